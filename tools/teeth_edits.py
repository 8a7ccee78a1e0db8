"""Shared by the teeth scripts (teeth_liveness.py, teeth_safety.py): put one breakage
into the source as exact-string edits, run a check, and always restore the source."""
import pathlib


def with_breakage(root: pathlib.Path, name, files, old, new, run):
    """Applies the edits (`files`, `old`, `new` are `|`-, `||`-, `||`-separated lists of
    equal length; each old string must occur exactly once), returns `run()`, and
    restores every edited file whatever happens."""
    fs, olds, news = files.split('|'), old.split('||'), new.split('||')
    saved = {}
    try:
        for f, o, n in zip(fs, olds, news):
            p = root / f
            saved.setdefault(f, p.read_text())
            t = p.read_text()
            assert t.count(o) == 1, (name, f, o)
            p.write_text(t.replace(o, n))
        return run()
    finally:
        for f, t in saved.items():
            (root / f).write_text(t)
