// What both components share; ui.py puts it before each component's own script.

// A new element of `tag` (with `className`), appended to `parent` when given.
function element(tag, className, parent) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (parent) parent.appendChild(node);
  return node;
}
