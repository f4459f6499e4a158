// Tells the server whether this browser tab is hidden (ui.tab_hidden): the change reruns the page,
// whose polling fragments then do not poll at all while nobody can see them (ui.poll_every), and
// draw the run as it is the moment the tab is shown again. It draws nothing, and hides its own
// element container so that it takes no room.

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
