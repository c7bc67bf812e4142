"""The README's "A first API call", run as it is written: its two shell blocks, taken from
README.md, run by bash with curl and python3 against the bank served over real HTTP, and the
browser's part (sign in, follow the redirects) done by an HTTP client in between.

Only what the reader is told to change is changed: the bank's URL (this server's port), the
demo app's client_id and the pasted code.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.bank.welcome.conftest import DevBank, sign_in_and_follow

README = Path(__file__).resolve().parents[3] / "README.md"


def block(name: str) -> str:
    """The fenced shell block after `<!-- walkthrough:<name> -->`, without its indentation."""
    text = README.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- walkthrough:{name} -->\n( *)```sh\n(.*?)\n *```", text, flags=re.DOTALL
    )
    assert found is not None, f"README.md has no walkthrough:{name} block"
    indent = len(found.group(1))
    return "\n".join(line[indent:] for line in found.group(2).splitlines())


def with_value(script: str, variable: str, value: str) -> str:
    """The script with the reader's edit: `VARIABLE=...` set to `value` (the line must exist)."""
    edited, count = re.subn(rf"^{variable}=.*$", f"{variable}={value}", script, flags=re.M)
    assert count == 1, f"the block sets {variable} once"
    return edited


async def bash(script: str, cwd: Path) -> str:
    """The script run by bash -eu in a thread: the bank it calls is served by this event loop."""
    return await asyncio.to_thread(_bash, script, cwd)


def _bash(script: str, cwd: Path) -> str:
    executable = shutil.which("bash")
    assert executable is not None
    done = subprocess.run(
        [executable, "-eu", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "LANG": "C.UTF-8"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def token_request(page: str) -> str:
    """The token request the callback page shows, as text."""
    shown = re.search(r'<code id="token-curl">(.*?)</code>', page, flags=re.DOTALL)
    assert shown is not None, "the page shows no token request"
    return html.unescape(shown.group(1))


@pytest.fixture(autouse=True)
def _tools() -> None:
    missing = [tool for tool in ("bash", "curl", "python3") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the README's walk-through needs {', '.join(missing)}")


async def test_the_readme_walkthrough_reaches_a_first_authenticated_call(
    dev_bank: DevBank, tmp_path: Path
) -> None:
    first = with_value(block("authorize"), "BANK", dev_bank.url)
    first = with_value(first, "CLIENT_ID", dev_bank.demo_app.client_id)
    # The variables the reader's shell keeps between the steps, kept here in a file.
    printed = await bash(
        first + "\ndeclare -p BANK CLIENT_ID REDIRECT VERIFIER > state.sh\n", tmp_path
    )
    authorize_url = printed.strip().splitlines()[-1]
    asked = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert asked["redirect_uri"] == f"{dev_bank.url}/dev/callback"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43

    async with httpx.AsyncClient(base_url=dev_bank.url) as browser:
        callback = await sign_in_and_follow(browser, authorize_url, dev_bank)
        assert callback.startswith(f"{dev_bank.url}/dev/callback?")
        page = await browser.get(callback)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    code = re.search(r'<code id="code">([^<]+)</code>', page.text)
    assert code is not None
    assert code.group(1) == parse_qs(urlsplit(callback).query)["code"][0]
    # The page's token request is the README's, with this code, redirect and client filled in.
    shown = token_request(page.text)
    assert f"-d code={code.group(1)}" in shown
    assert f"--data-urlencode redirect_uri={dev_bank.url}/dev/callback" in shown
    assert f"-d client_id={dev_bank.demo_app.client_id}" in shown
    assert '-d code_verifier="$VERIFIER"' in shown

    second = with_value(block("token"), "CODE", code.group(1))
    answer = json.loads(await bash(". ./state.sh\n" + second, tmp_path))
    assert answer["month"] == answer["month"][:7]
    assert isinstance(answer["days"], list)


async def test_the_callback_page_runs_the_token_request_it_shows(
    dev_bank: DevBank, tmp_path: Path
) -> None:
    """The page's own curl, with $VERIFIER set, returns tokens (not only the README's)."""
    verifier = "v" * 50
    challenge = (
        await bash(
            "python3 -c 'import base64,hashlib,sys; print(base64.urlsafe_b64encode(hashlib.sha256("
            'sys.argv[1].encode()).digest()).rstrip(b"=").decode())\' ' + verifier,
            tmp_path,
        )
    ).strip()
    query = httpx.QueryParams(
        response_type="code", client_id=dev_bank.demo_app.client_id,
        redirect_uri=f"{dev_bank.url}/dev/callback", scope="records:read", state="s",
        code_challenge=challenge, code_challenge_method="S256",
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=dev_bank.url) as browser:
        callback = await sign_in_and_follow(browser, f"/oauth/authorize?{query}", dev_bank)
        page = await browser.get(callback)
    shown = token_request(page.text)
    tokens = json.loads(await bash(f"VERIFIER={verifier}\n{shown}", tmp_path))
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["scope"] == "records:read"
