// The page works without this: it only lets the Print button open the
// browser's print dialog (Ctrl+P does the same).
document.getElementById('print').addEventListener('click', function () { window.print(); });
