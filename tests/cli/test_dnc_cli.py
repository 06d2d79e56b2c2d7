"""`happ dnc add|remove|list|import` as processes against the stack's gateway (over HTTP, with the
admin token), and the CSV reading and splitting as pure functions."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from happ_integ.calls.phones import mask_phone
from happ_integ.cli import build_parser
from happ_integ.cli import dnc as cd
from happ_integ.cli.common import CliError
from tests.cli.conftest import Cli

pytestmark = pytest.mark.timeout(300)
BLOCK = f"+38093{random.randrange(100, 1000)}"  # numbers no other test dials: +38093 BBB NNNN


def number(n: int) -> str:
    return f"{BLOCK}{n:04d}"


def test_happ_has_the_dnc_command() -> None:
    """`dnc.register(commands, command)` is called in `happ_integ.cli.build_parser`."""
    args = build_parser().parse_args(["dnc", "list", "--integration", "sofa", "--json"])
    assert args.func is cd.cmd_list and args.label == "dnc list" and args.json


# The file, as pure functions -------------------------------------------------------------------


def test_rows_keep_their_lines_and_rows_that_cannot_be_sent_are_named() -> None:
    numbers = cd.parse_numbers(
        "\ufeffname;Phone_Number;reason\n"
        "A;+380994829573;asked\n"
        '\nB;;"two\nlines"\n'  # a blank line, then line 4 (over two lines): no number
        "C;0994829574;;\n"  # an empty extra cell is fine
        "D;0994829575;x;extra\n"  # line 7: a cell more than the header
    )
    assert [(r.line, r.cells) for r in numbers.rows] == [
        (2, ("+380994829573", "", "asked")),
        (6, ("0994829574", "", "")),
    ]
    assert numbers.rejected == [(4, "no phone_number"), (7, "4 cells, but the header names 3 columns")]
    assert numbers.ignored == ["name"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "dnc.csv is empty"),
        ("phone,reason\n1,2\n", "dnc.csv has no phone_number column (its columns: phone, reason)"),
        ("phone_number,Phone_Number\n", "names the column 'phone_number' twice"),
    ],
)
def test_a_header_that_cannot_be_read_is_refused(text: str, message: str) -> None:
    with pytest.raises(CliError) as refused:
        cd.parse_numbers(text, "dnc.csv")
    assert message in refused.value.message


def test_a_big_file_goes_in_parts_small_enough_for_the_body_limit() -> None:
    rows = [cd.Row(n + 2, (number(n), "", "x" * 300)) for n in range(12_000)]
    sent = cd.parts(rows)
    assert sum(len(chunk) for chunk, _ in sent) == 12_000
    assert all(len(chunk) <= cd.PART_ROWS and len(body) < 1024 * 1024 for chunk, body in sent)
    assert all(body.startswith(b"phone_number,integration,reason\n") for _, body in sent)
    assert [r.line for chunk, _ in sent for r in chunk] == list(range(2, 12_002))


# The commands against the gateway --------------------------------------------------------------


@pytest.fixture
async def dnc(cli: Cli) -> AsyncIterator[Cli]:
    yield cli
    await cli.stack.resources.pool.execute("DELETE FROM happ_suppressions WHERE phone LIKE $1", f"{BLOCK}%")


async def test_add_list_and_remove(dnc: Cli) -> None:
    phone = number(1)
    added = (await dnc("dnc", "add", phone, "--reason", "asked not to be called")).ok().out
    assert (
        added
        == f"{mask_phone(phone)} is on the do-not-call list of every integration now (asked not to be called)\n"
    )
    again = (await dnc("dnc", "add", "0" + phone.removeprefix("+380"), "--reason", "other")).ok().out
    assert again.startswith(
        f"{mask_phone(phone)} was already on the do-not-call list of every integration since "
    )
    assert again.endswith("(asked not to be called): nothing changed\n")
    scoped = (
        (
            await dnc(
                "dnc",
                "add",
                phone,
                "--reason",
                "sofa only",
                "--integration",
                "sofa",
                "--evidence",
                "c_1",
                "--json",
            )
        )
        .ok()
        .json()
    )
    assert scoped["created"] is True and scoped["integration"] == "sofa" and scoped["evidence"] == "c_1"

    listed = (await dnc("dnc", "list", "--phone", phone)).ok().out.splitlines()
    assert listed[0].split() == ["PHONE", "INTEGRATION", "SOURCE", "REASON", "ADDED"]
    assert listed[1].split()[:3] == [mask_phone(phone), "sofa", "manual"]
    assert listed[2].split()[:3] == [mask_phone(phone), "(all)", "manual"]
    page = (await dnc("dnc", "list", "--integration", "sofa", "--limit", "1", "--json")).ok().json()
    assert len(page["suppressions"]) == 1 and page["next_cursor"]
    more = (await dnc("dnc", "list", "--integration", "sofa", "--limit", "1")).ok().out
    assert f"(more: happ dnc list --integration sofa --cursor {page['next_cursor']})" in more
    for text in (added, again, json.dumps(scoped), "\n".join(listed), json.dumps(page)):
        assert phone not in text

    removed = (await dnc("dnc", "remove", phone, "--integration", "sofa", "--reason", "test")).ok().out
    assert removed == f"{mask_phone(phone)} is off the do-not-call list of integration sofa\n"
    gone = await dnc("dnc", "remove", phone, "--integration", "sofa")
    line = gone.error_line()
    assert (
        line.startswith("happ dnc remove: ") and "is not on the do-not-call list of integration sofa" in line
    )
    assert "happ dnc list --phone" in line and phone not in line
    assert (await dnc("dnc", "remove", phone, "--json")).ok().json()["integration"] is None
    assert "no entries match" in (await dnc("dnc", "list", "--phone", phone)).ok().out


async def test_import_names_rejected_rows_by_their_line_across_parts(dnc: Cli, tmp_path: Path) -> None:
    lines = ["phone_number,integration,reason,name"]
    lines += [f"{number(100 + n)},,,lead {n}" for n in range(7000)]
    lines[3] = "12345,,,bad"  # line 4
    lines[6500] = f"{number(9000)},nosuch,,x"  # line 6501, in the second part
    lines.append(f"{number(9001)},sofa,complained,")  # line 7002
    lines.append(f"{number(100)},,,again")  # line 7003: already added from line 2
    path = tmp_path / "dnc.csv"
    path.write_text("\n".join(lines) + "\n")
    answer = (await dnc("dnc", "import", str(path), "--reason", "from a file", "--json")).ok().json()
    assert answer["rows"] == 7002 and answer["added"] == 6999 and answer["skipped"] == 1
    assert answer["rejected"] == [
        {"line": 4, "error": "phone_number is not a valid phone number"},
        {"line": 6501, "error": "unknown integration 'nosuch'"},
    ]
    assert answer["ignored_columns"] == ["name"]
    pool = dnc.stack.resources.pool
    row = await pool.fetchrow(
        "SELECT integration, reason, source FROM happ_suppressions WHERE phone = $1", number(9001)
    )
    assert dict(row) == {"integration": "sofa", "reason": "complained", "source": "import"}
    assert (
        await pool.fetchval("SELECT reason FROM happ_suppressions WHERE phone = $1", number(150))
        == "from a file"
    )

    small = tmp_path / "small.csv"
    small.write_text(f"phone_number,reason\n{number(9002)},\n\n,why\n{number(9002)},\n")
    text = (await dnc("dnc", "import", str(small), "--integration", "sofa")).ok().out
    assert text.splitlines() == [
        "1 number added to the do-not-call list, 1 already on it, 1 rejected (of 3 rows)",
        "  line 4: no phone_number",
    ]
    assert (
        await pool.fetchval("SELECT integration FROM happ_suppressions WHERE phone = $1", number(9002))
        == "sofa"
    )


async def test_failures_are_one_line_naming_the_fix(dnc: Cli, tmp_path: Path) -> None:
    bad = await dnc("dnc", "add", f"{BLOCK}99999", "--reason", "x")
    assert "phone_number is not a valid phone number" in bad.error_line() and BLOCK not in bad.error_line()
    unknown = await dnc("dnc", "add", number(2), "--reason", "x", "--integration", "nosuch")
    assert "serves no integration 'nosuch': it serves sofa" in unknown.error_line()
    anonymous = await Cli(dnc.stack, dnc.without("HAPP_ADMIN_TOKEN"), dnc.cwd)("dnc", "list")
    assert "HAPP_ADMIN_TOKEN is not set" in anonymous.error_line()
    wrong = await dnc("dnc", "list", HAPP_ADMIN_TOKEN="not-the-admin-token-" + "x" * 32)
    assert "refused the admin token" in wrong.error_line()
    missing = await dnc("dnc", "import", str(tmp_path / "nope.csv"))
    assert "no file" in missing.error_line()
    (tmp_path / "utf16.csv").write_bytes("phone_number\n+380994829573\n".encode("utf-16"))
    assert "is not UTF-8" in (await dnc("dnc", "import", str(tmp_path / "utf16.csv"))).error_line()
    usage = await dnc("dnc", "add", number(2))
    assert usage.code == 2 and "--reason" in usage.err
