"""Render an exported workbook with LibreOffice (PDF, then PNG pages) to see what users will see.

    python scripts/check_workbook.py exports/narratives.xlsx --out /tmp/pages

Needs `soffice` (apt-get install libreoffice-calc); PNG pages need `pdftoppm` (poppler-utils).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT = 300  # seconds; a first LibreOffice start builds its profile and is slow


@dataclass
class Rendering:
    pdf: Path
    pages: int
    pngs: list[Path] = field(default_factory=list)


class CheckError(Exception):
    """LibreOffice is missing or could not convert the workbook."""


def check_workbook(workbook: Path, out: Path, *, pngs: bool = True, dpi: int = 80) -> Rendering:
    """Convert `workbook` to a PDF in `out` and, when pdftoppm is here, to one PNG per page."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        raise CheckError("soffice is not on PATH: apt-get install libreoffice-calc")
    out.mkdir(parents=True, exist_ok=True)
    # A private profile, so a running LibreOffice (or a parallel test) does not lock this one out.
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        command = [
            soffice, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless",
            "--convert-to", "pdf", "--outdir", str(out), str(workbook),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    pdf = out / f"{workbook.stem}.pdf"
    if done.returncode != 0 or not pdf.exists():
        raise CheckError(f"LibreOffice could not convert {workbook}: {done.stderr or done.stdout}")
    rendering = Rendering(pdf, _pages(pdf))
    if pngs and shutil.which("pdftoppm"):
        for old in out.glob(f"{workbook.stem}-*.png"):
            old.unlink()
        subprocess.run(
            ["pdftoppm", "-png", "-r", str(dpi), str(pdf), str(out / workbook.stem)],
            check=True,
            timeout=TIMEOUT,
        )
        rendering.pngs = sorted(out.glob(f"{workbook.stem}-*.png"))
    return rendering


def _pages(pdf: Path) -> int:
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        if found := re.search(r"^Pages:\s+(\d+)", info, re.M):
            return int(found[1])
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workbook", type=Path)
    parser.add_argument("--out", type=Path, help="output folder (default: <workbook>-pages)")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args(argv)
    out = args.out or args.workbook.with_name(f"{args.workbook.stem}-pages")
    try:
        rendering = check_workbook(args.workbook, out, dpi=args.dpi)
    except (CheckError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{rendering.pages} pages: {rendering.pdf}")
    if not rendering.pngs:
        print("no PNG pages: pdftoppm (poppler-utils) is not installed")
    for png in rendering.pngs:
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
