"""Fetch models: resumable, verified, atomic downloads with progress bars."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .errors import UserError, first_line
from .models import ModelSpec, check_spec, sha256_file, write_manifest

CHUNK = 1 << 16


def pull(models_dir: Path, spec: ModelSpec, offline: bool = False, force: bool = False) -> Path:
    """Make `spec` whole under models_dir, downloading only what is missing or damaged."""
    folder = models_dir / spec.name
    if not force and check_spec(spec, folder, deep=True).state == "ok":
        return folder
    if offline:
        raise UserError(
            f"model {spec.name} is not installed in {models_dir} and downloads are off (offline mode); "
            f"run `os1d models pull {spec.name}` on a connected machine or unset HF_HUB_OFFLINE"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the model folder {folder}: {exc.strerror}; "
                        f"set [models] dir or OS1D_MODELS_DIR to a folder os1d can write") from None
    if spec.source.startswith("hf:"):
        files = _pull_hf(folder, spec)
    else:
        files = [_pull_url(folder, spec.source + rel, rel, spec.sha256.get(rel, "")) for rel in spec.files]
    write_manifest(folder, files)
    return folder


def _pull_url(folder: Path, url: str, rel: str, sha256: str) -> str:
    """Download url to folder/rel via a .part file that resumes where it stopped."""
    final = folder / rel
    if final.is_file() and sha256 and sha256_file(final) == sha256:
        return rel
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already complete
            response = None
        else:
            raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot download {url}: {reason}; check the network or use offline mode") from None
    if response is not None:
        with response:
            if have and response.status != 206:  # server ignored Range: start again
                have = 0
            total = int(response.headers.get("Content-Length") or 0) + have
            with part.open("ab" if have else "wb") as out, tqdm(
                total=total or None, initial=have, unit="B", unit_scale=True, desc=rel, leave=False
            ) as bar:
                try:
                    while block := response.read(CHUNK):
                        out.write(block)
                        bar.update(len(block))
                except OSError as exc:
                    raise UserError(f"download of {url} was interrupted ({exc}); run the same command to resume") from None
    if sha256 and sha256_file(part) != sha256:
        part.unlink()
        raise UserError(f"{url} failed its sha256 check (the partial file was removed); try again")
    os.replace(part, final)
    return rel


def _pull_hf(folder: Path, spec: ModelSpec) -> list[str]:
    """Download spec.files (and ONNX companions) from the Hugging Face hub into folder."""
    from huggingface_hub import HfApi, hf_hub_download

    repo = spec.source[3:]
    api = HfApi()
    try:
        files = list(spec.files)
        if spec.companions:
            listed = api.list_repo_files(repo)
            for rel in spec.files:
                if rel.endswith(".onnx"):
                    files += sorted(f for f in listed if f.startswith(rel + "_data"))
        infos = {info.path: info for info in api.get_paths_info(repo, files, expand=True)}
        for rel in files:
            if rel not in infos:
                raise UserError(f"the hub does not list {repo}/{rel}; os1d may need an update")
            hf_hub_download(repo, rel, local_dir=folder)
            if not _matches_hub(folder / rel, infos[rel]):
                (folder / rel).unlink()
                raise UserError(f"{repo}/{rel} failed its hash check (removed); run the same command again")
    except UserError:
        raise
    except Exception as exc:  # the hub client raises HTTP, connection and its own errors alike
        reason = f"{type(exc).__name__}: {first_line(exc)}"
        raise UserError(f"cannot download {repo} from the Hugging Face hub ({reason})") from None
    shutil.rmtree(folder / ".cache", ignore_errors=True)
    return files


def _matches_hub(path: Path, info) -> bool:  # type: ignore[no-untyped-def]
    """Large (LFS) files against the hub's sha256; small ones against their git blob id."""
    if getattr(info, "lfs", None) is not None:
        return sha256_file(path) == info.lfs.sha256
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == info.blob_id
