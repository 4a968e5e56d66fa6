"""Site.resolve: a request-target never reaches a file outside the site root."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.static import Site, content_type

SECRET = b"TOP-SECRET: never serve me\n"


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """tmp/secret (outside), tmp/outside/secret, tmp/root/... (the site)."""
    (tmp_path / "secret").write_bytes(SECRET)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    (outside / "index.html").write_bytes(b"<p>outside index</p>")
    root = tmp_path / "root"
    root.mkdir()
    (root / "index.html").write_bytes(b"<h1>root</h1>")
    (root / "index.html.png").write_bytes(b"png-ish")
    (root / ".hidden").write_bytes(b"secret dotfile")
    sub = root / "sub"
    sub.mkdir()
    (sub / "index.html").write_bytes(b"<h1>sub</h1>")
    (sub / ".git").mkdir()
    (sub / ".git" / "config").write_bytes(b"[core]\n")
    (root / "empty").mkdir()
    (root / "link").symlink_to(tmp_path / "secret")  # a file link leaving the root
    (root / "linkdir").symlink_to(outside, target_is_directory=True)  # a dir link leaving it
    (root / "inlink.html").symlink_to(root / "index.html")  # a link that stays inside
    for name in ("style.css", "app.js", "logo.png", "logo.svg", "favicon.ico", "data.json",
                 "big.bmp"):
        (root / name).write_bytes(b"x" * 10)
    return root


@pytest.fixture
def site(site_dir: Path) -> Site:
    return Site(site_dir)


def is_inside(path: str, root: Path) -> bool:
    real = os.path.realpath(path)
    root_real = os.path.realpath(root)
    return real == root_real or real.startswith(root_real + os.sep)


TRAVERSALS = [
    b"/../secret",
    b"/a/../../secret",
    b"/%2e%2e/secret",
    b"/%2E%2E%2Fsecret",
    b"/..%2fsecret",
    b"/..%5csecret",
    b"/..\\secret",
    b"/%00",
    b"/index.html%00.png",
    b"//etc/passwd",
    b"/./../secret",
    b"http://x/../secret",
    b"/link",
    b"/linkdir/secret",
    b"/linkdir/",
    b"/sub/../../secret",
    b"/sub/%2e%2e/%2e%2e/secret",
    b"/%2e%2e%2f%2e%2e%2fsecret",
    b"/.%2e/secret",
    b"/%252e%252e/secret",
    b"/..;/secret",
    b"/../outside/secret",
    b"/%c0%ae%c0%ae/secret",
    b"/" + b"../" * 20 + b"etc/passwd",
    b"/etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=lambda t: t.decode("latin-1"))
def test_traversal_is_refused(site: Site, site_dir: Path, target: bytes) -> None:
    result = site.resolve(target)
    assert result.status in (403, 404), result
    assert result.path is None
    # Resolved twice (the cache) gives the same answer.
    again = site.resolve(target)
    assert (again.status, again.path) == (result.status, result.path)


@pytest.mark.parametrize("target", TRAVERSALS, ids=lambda t: t.decode("latin-1"))
def test_traversal_never_yields_a_path_outside_root(site: Site, site_dir: Path,
                                                    target: bytes) -> None:
    result = site.resolve(target)
    if result.path is not None:
        assert is_inside(result.path, site_dir), result.path
        with open(result.path, "rb") as f:
            assert f.read() != SECRET


def test_dotdot_segment_is_403(site: Site) -> None:
    assert site.resolve(b"/../secret").status == 403
    assert site.resolve(b"/%2e%2e/secret").status == 403


def test_symlink_leaving_root_is_403(site: Site) -> None:
    result = site.resolve(b"/link")
    assert result.status == 403
    assert site.resolve(b"/linkdir/index.html").status == 403


def test_symlink_inside_root_is_served(site: Site, site_dir: Path) -> None:
    result = site.resolve(b"/inlink.html")
    assert result.status == 200
    assert result.path == str(site_dir / "index.html")


@pytest.mark.parametrize("target", [b"/.hidden", b"/sub/.git/config", b"/sub/.git/",
                                    b"/%2ehidden", b"/sub/%2Egit/config", b"/.hidden?x=1"])
def test_dotfiles_are_404(site: Site, target: bytes) -> None:
    result = site.resolve(target)
    assert result.status == 404
    assert result.path is None


def test_directory_without_slash_redirects(site: Site) -> None:
    result = site.resolve(b"/sub")
    assert result.status == 301
    assert result.location == "/sub/"
    assert result.path is None


def test_directory_redirect_drops_query(site: Site) -> None:
    result = site.resolve(b"/sub?a=1")
    assert result.status == 301
    assert result.location == "/sub/"


@pytest.mark.parametrize("target", [b"//sub", b"/%2Fsub", b"///sub"])
def test_directory_redirect_is_never_protocol_relative(site: Site, target: bytes) -> None:
    """``Location: //sub/`` would send the browser to the host ``sub``."""
    result = site.resolve(target)
    if result.status == 301:
        assert result.location is not None
        assert result.location.startswith("/")
        assert not result.location.startswith("//"), result.location


def test_directory_with_slash_serves_its_index(site: Site, site_dir: Path) -> None:
    result = site.resolve(b"/sub/")
    assert result.status == 200
    assert result.path == str(site_dir / "sub" / "index.html")


def test_root_serves_index(site: Site, site_dir: Path) -> None:
    for target in (b"/", b"/index.html", b"/?q=../../secret", b"/index%2Ehtml"):
        result = site.resolve(target)
        assert result.status == 200, target
        assert result.path == str(site_dir / "index.html"), target


def test_directory_without_index_is_404(site: Site) -> None:
    assert site.resolve(b"/empty/").status == 404
    assert site.resolve(b"/empty").status == 301


def test_missing_file_is_404(site: Site) -> None:
    result = site.resolve(b"/nope.html")
    assert result.status == 404
    assert result.path is None


def test_absolute_form_inside_root(site: Site, site_dir: Path) -> None:
    result = site.resolve(b"http://example.test/sub/")
    assert result.status == 200
    assert result.path == str(site_dir / "sub" / "index.html")


def test_nonexistent_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Site(tmp_path / "does-not-exist")


def test_default_site_refuses_its_dotfile() -> None:
    site = Site()
    assert (site.root / ".hidden").is_file()  # the trap is there...
    assert site.resolve(b"/.hidden").status == 404  # ...and never served
    assert site.resolve(b"/").status == 200


@pytest.mark.parametrize("name, expected", [
    ("index.html", "text/html; charset=utf-8"),
    ("INDEX.HTML", "text/html; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("logo.png", "image/png"),
    ("logo.svg", "image/svg+xml"),
    ("favicon.ico", "image/x-icon"),
    ("data.json", "application/json"),
    ("big.bmp", "image/bmp"),
])
def test_content_types(name: str, expected: str) -> None:
    assert content_type(name) == expected


def test_unknown_extension_is_octet_stream() -> None:
    assert content_type("blob.zzqqunknown") == "application/octet-stream"


@pytest.mark.parametrize("name, expected", [
    ("style.css", "text/css; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("logo.png", "image/png"),
    ("logo.svg", "image/svg+xml"),
    ("favicon.ico", "image/x-icon"),
    ("data.json", "application/json"),
    ("big.bmp", "image/bmp"),
    ("index.html", "text/html; charset=utf-8"),
])
def test_small_file_carries_content_type(site: Site, name: str, expected: str) -> None:
    result = site.resolve(b"/" + name.encode())
    assert result.status == 200 and result.path is not None
    cached = site.small_file(result.path)
    assert cached is not None
    assert cached.ctype == expected
    assert cached.body == Path(result.path).read_bytes()
