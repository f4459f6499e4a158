// Tells the server whether this browser tab is hidden (ui.tab_hidden), so that a polling fragment
// skips its reads and its drawing while nobody can see it, and draws again the moment the tab is
// shown. It draws nothing, and hides its own element container so that it takes no room.

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const host = parentElement.host || parentElement;  // the component draws into a shadow root
  const container = host.closest && host.closest('[data-testid="stElementContainer"]');
  if (container) container.style.display = "none";
  if (!parentElement.__cnnkitVisibility) {
    const report = () => setStateValue("hidden", document.hidden);
    parentElement.__cnnkitVisibility = report;
    document.addEventListener("visibilitychange", report);
  }
  if (data && data.hidden !== document.hidden) parentElement.__cnnkitVisibility();  // the server believed otherwise
  return () => {
    document.removeEventListener("visibilitychange", parentElement.__cnnkitVisibility);
    delete parentElement.__cnnkitVisibility;
  };
}
