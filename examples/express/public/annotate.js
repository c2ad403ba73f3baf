// Loaded only with ?annotate=1: finds dogpile's <!-- dogpile: hit|miss key=... --> comments and
// marks the elements between each one and its <!-- /dogpile --> (outlined by site.css), so the
// hits and misses are visible without reading the page source.
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_COMMENT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const found = /^ dogpile: (hit|miss) key=(.*) $/.exec(node.data);
  if (!found) continue;
  for (let el = node.nextSibling; el && !(el.nodeType === Node.COMMENT_NODE && el.data === ' /dogpile '); el = el.nextSibling) {
    if (el.nodeType !== Node.ELEMENT_NODE) continue;
    el.dataset.dogpile = found[1];
    el.title = `${found[1]}: ${found[2]}`;
  }
}
