"""The docs are checked, not built: README.md and docs/*.md.

- every relative link resolves to a file of the repository, and every `#anchor` (in the page or in another
  page) is the GitHub slug of one of the target's headings;
- every `mpack ...` command shown, in a shell code block (```bash, ```sh, ```console) or in inline code,
  names a command of the real typer app and only options that command has (`a|b` alternatives are each
  checked);
- every code block says what it is: a shell language (checked) or ```text (program output, not checked);
- the README stays a door: at most 200 lines, the two set-up commands first, a link to docs/index.md, and
  docs/index.md links every page.

A failure names the file, the line and what is wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 200
SHELL_FENCES = {"bash", "sh", "shell", "console", "zsh"}
OUTPUT_FENCES = {"text"}
SETUP_COMMANDS = ["bash scripts/quickstart.sh", "bash scripts/test.sh"]


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# ---- reading a Markdown page -------------------------------------------------------------------------------


@dataclass
class Page:
    path: Path
    prose: str  # the page with fenced blocks blanked (line numbers kept)
    fences: list[tuple[int, str, list[tuple[int, str]]]]  # (opening line, info string, [(line, text)])


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")


def read_page(path: Path) -> Page:
    lines = path.read_text(encoding="utf-8").split("\n")
    prose: list[str] = []
    fences: list = []
    opened = None  # (marker, line, info, body)
    for number, line in enumerate(lines, 1):
        match = _FENCE.match(line)
        if opened is None and match:
            opened = (match.group(1), number, match.group(2).lower(), [])
            prose.append("")
        elif opened is not None:
            if line.strip().startswith(opened[0][0] * len(opened[0])) and not line.strip().strip(opened[0][0]):
                fences.append((opened[1], opened[2], opened[3]))
                opened = None
            else:
                opened[3].append((number, line))
            prose.append("")
        else:
            prose.append(line)
    if opened is not None:
        fences.append((opened[1], opened[2], opened[3]))
    return Page(path, "\n".join(prose), fences)


_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)


def code_spans(page: Page) -> list[tuple[int, str]]:
    """Inline code of the prose, as (line, text); a span may run over a line break, never a blank line."""
    found = []
    for match in _CODE_SPAN.finditer(page.prose):
        if "\n\n" not in match.group(2):
            found.append((page.prose.count("\n", 0, match.start()) + 1, match.group(2)))
    return found


def _without_code_spans(text: str) -> str:
    return _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)) if "\n\n" not in m.group(2) else m.group(0), text)


# ---- headings and links ------------------------------------------------------------------------------------


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text (links reduced to their text, tags dropped), lower case, every
    character other than letters, digits, `_`, `-` and space removed, spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Page) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in page.prose.split("\n"):
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


_INLINE_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)


def links(page: Page) -> list[tuple[int, str]]:
    text = _without_code_spans(page.prose)
    found = []
    for pattern in (_INLINE_LINK, _REFERENCE):
        for match in pattern.finditer(text):
            found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return sorted(found)


def link_problems(page: Page) -> list[str]:
    problems = []
    for line, target in links(page):
        where = f"{_rel(page.path)}:{line}"
        if not target:
            problems.append(f"{where}: an empty link target")
            continue
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto: ...: not checked here
            continue
        file_part, _, anchor = target.partition("#")
        destination = page.path if not file_part else (page.path.parent / file_part).resolve()
        if not destination.exists():
            problems.append(f"{where}: link {target!r}: {_rel(destination)} does not exist")
            continue
        if anchor:
            if destination.suffix != ".md" or destination.is_dir():
                problems.append(f"{where}: link {target!r}: an anchor into {_rel(destination)}, which is not a Markdown page")
                continue
            known = anchors(read_page(destination))
            if anchor not in known:
                close = sorted(known, key=lambda slug: -len(set(slug.split("-")) & set(anchor.split("-"))))[:3]
                problems.append(f"{where}: link {target!r}: no heading of {_rel(destination)} has the anchor #{anchor} (closest: {', '.join('#' + c for c in close)})")
    return problems


# ---- mpack commands ----------------------------------------------------------------------------------------

_MPACK = re.compile(r"(?:^|(?<=[\s/]))mpack(?=\s)")
_WORD = re.compile(r"\s*([a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*)(?=\s|$)")
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def _cut_command(text: str) -> str:
    """The command up to where the shell ends it: a comment, a pipe or redirection outside [brackets], `;`,
    `&&`, a substitution. Quoted strings are blanked (their content is data, not options)."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)
    depth = 0
    for index, char in enumerate(text):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth = max(0, depth - 1)
        before = text[index - 1] if index else " "
        if char == "#" and before.isspace():
            return text[:index]
        if depth == 0 and (char in ";<`" or text.startswith("&&", index) or text.startswith("$(", index)):
            return text[:index]
        if depth == 0 and char in "|>" and before.isspace():
            return text[:index]
    return text


def _strip_comment(line: str) -> str:
    """A shell line without its comment (a `#` after a space, outside quotes): a comment is prose."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def mpack_commands_in(text: str) -> list[tuple[int, str]]:
    """Each `mpack ...` in a piece of shell text, as (offset, the command's text up to where the shell ends it)."""
    return [(match.start(), _cut_command(text[match.end():])) for match in _MPACK.finditer(text)]


def shown_commands(page: Page) -> list[tuple[int, str]]:
    """(line, text after `mpack`) for every mpack command shown: shell fences (a line ending in a backslash, or
    starting with `[` or `-` after an mpack line, continues it) and inline code."""
    found = []
    for _, info, body in page.fences:
        if info not in SHELL_FENCES:
            continue
        logical: list[tuple[int, str]] = []
        for number, line in body:
            line = _strip_comment(line).rstrip()
            continues = logical and (logical[-1][1].endswith("\\") or (_MPACK.search(logical[-1][1]) and line.lstrip()[:1] in ("[", "-")))
            if continues:
                logical[-1] = (logical[-1][0], logical[-1][1].rstrip("\\") + " " + line.strip())
            else:
                logical.append((number, line.strip().removeprefix("$ ")))
        for number, line in logical:
            found += [(number, command) for _, command in mpack_commands_in(line)]
    for number, span in code_spans(page):
        for offset, command in mpack_commands_in(span):
            found.append((number + span.count("\n", 0, offset), " ".join(command.split())))
    return found


def _app_root():
    """The click command behind the typer app (typer may carry its own copy of click: duck typing below)."""
    import typer

    from mpack.packager.cli.app import app

    return typer.main.get_command(app)


def _is_group(command) -> bool:
    return callable(getattr(command, "list_commands", None)) and callable(getattr(command, "get_command", None))


def _options_of(command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if getattr(param, "param_type_name", None) == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def command_problems(page: Page, root) -> list[str]:
    problems = []
    for line, text in shown_commands(page):
        where = f"{_rel(page.path)}:{line}: `mpack {' '.join(text.split())[:80]}`"
        # walk down the groups (`mpack azure deploy ...` if there were groups), a|b meaning each of them
        frontier = [(root, "mpack", text)]
        leaves = []
        while frontier:
            command, name, rest = frontier.pop(0)
            if not _is_group(command):
                leaves.append((command, name, rest))
                continue
            word = _WORD.match(rest)
            if not word:  # `mpack --help`, `mpack` alone: the group's own options
                leaves.append((command, name, rest))
                continue
            context = command.context_class(command, info_name=name)
            for choice in word.group(1).split("|"):
                sub = command.get_command(context, choice)
                if sub is None:
                    problems.append(f"{where}: `{name} {choice}` is not a command (commands: {', '.join(command.list_commands(context))})")
                else:
                    frontier.append((sub, f"{name} {choice}", rest[word.end():]))
        for command, name, rest in leaves:
            known = _options_of(command)
            for option in _OPTION.findall(rest):
                option = option.split("=")[0]
                if option not in known:
                    long_ones = sorted(o for o in known if o.startswith("--"))
                    problems.append(f"{where}: {option} is not an option of `{name}` (its options: {' '.join(long_ones)})")
    return problems


FOREIGN_OPTIONS = {"--gpus": "docker run"}  # other programs' options the pages name in inline code


def loose_option_problems(page: Page, root) -> list[str]:
    """An option in inline code outside an mpack command (`--no-verify`, `--lambda-http asgi`) must be an option
    of some mpack command, of a bench/ script (its source names it), or of another program named above."""
    known = set(FOREIGN_OPTIONS)
    context = root.context_class(root, info_name="mpack")
    for name in root.list_commands(context):
        known |= _options_of(root.get_command(context, name))
    bench = "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "bench").glob("*.py")))
    problems = []
    for line, span in code_spans(page):
        if _MPACK.search(span):
            continue
        for option in re.findall(r"(?<![\w-])(--[A-Za-z][\w-]*)", span):
            option = option.split("=")[0]
            if option not in known and f'"{option}"' not in bench:
                problems.append(f"{_rel(page.path)}:{line}: `{span}`: {option} is not an option of any mpack command nor of a bench/ script")
    return problems


def fence_problems(page: Page) -> list[str]:
    return [
        f"{_rel(page.path)}:{line}: a code block without a known language: tag it ```bash (a command, checked) or ```text (output)"
        for line, info, _ in page.fences
        if info not in SHELL_FENCES | OUTPUT_FENCES
    ]


# ---- the tests ---------------------------------------------------------------------------------------------

PAGES = [_rel(path) for path in doc_files()]


@pytest.fixture(scope="module")
def root_command():
    return _app_root()


def test_readme_stays_short():
    count = len((ROOT / "README.md").read_text(encoding="utf-8").rstrip("\n").split("\n"))
    assert count <= README_MAX_LINES, f"README.md: {count} lines, more than {README_MAX_LINES}: move the detail into a page of docs/"


def test_readme_starts_with_the_two_setup_commands():
    page = read_page(ROOT / "README.md")
    line, info, body = page.fences[0]
    commands = [text.split("#")[0].strip() for _, text in body if text.split("#")[0].strip()]
    assert info in SHELL_FENCES and commands == SETUP_COMMANDS, f"README.md:{line}: the first code block must be exactly {SETUP_COMMANDS}, found {commands}"
    for command in commands:
        assert (ROOT / command.split()[-1]).is_file(), f"README.md:{line}: {command}: no such script"


def test_every_page_is_reachable():
    readme_targets = {target.split("#")[0] for _, target in links(read_page(ROOT / "README.md"))}
    assert "docs/index.md" in readme_targets, "README.md: no link to docs/index.md"
    index_targets = {target.split("#")[0] for _, target in links(read_page(ROOT / "docs" / "index.md"))}
    missing = [path.name for path in sorted((ROOT / "docs").glob("*.md")) if path.name != "index.md" and path.name not in index_targets]
    assert not missing, f"docs/index.md: no link to {', '.join(missing)}"


@pytest.mark.parametrize("name", PAGES)
def test_links_resolve(name):
    problems = link_problems(read_page(ROOT / name))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", PAGES)
def test_code_blocks_are_tagged(name):
    problems = fence_problems(read_page(ROOT / name))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", PAGES)
def test_mpack_commands_exist(name, root_command):
    problems = command_problems(read_page(ROOT / name), root_command)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", PAGES)
def test_options_in_prose_exist(name, root_command):
    problems = loose_option_problems(read_page(ROOT / name), root_command)
    assert not problems, "\n".join(problems)


def test_the_checker_reads_the_docs(root_command):
    """Guards the checker against passing for nothing: it must find the commands the pages show."""
    commands = [command for path in doc_files() for command in shown_commands(read_page(path))]
    subcommands = {text.split()[0] for _, text in commands if text.split()}
    assert len(commands) >= 40, f"only {len(commands)} mpack commands found in the docs"
    assert {"build", "invoke", "serve", "deploy", "promote", "rollback", "export", "base-image"} <= subcommands, subcommands


def test_the_checker_catches_mistakes(tmp_path, root_command):
    (tmp_path / "other.md").write_text("# Other page\n\n## The `mpack build` flags\n", encoding="utf-8")
    page_path = tmp_path / "page.md"
    page_path.write_text(
        "# Page\n\n"
        "```bash\n"
        "mpack build --model m --target lambda --no-such-flag 1   # a comment with --ignored\n"
        "mpack invoke BUNDLE [--data JSON | --data-file F]\n"
        "             [--memroy 1024]\n"
        "mpack frobnicate --x\n"
        "```\n\n"
        "Try `mpack invoke|serve --snapstrat` or `mpack deploy --plan`, see [other](other.md#the-mpack-build-flags),\n"
        "[gone](missing.md), [bad anchor](other.md#nope) and [here](#page).\n\n"
        "```\nno language\n```\n\n"
        "Build with `--no-verify` or `--lamda-http asgi`.\n",
        encoding="utf-8",
    )
    page = read_page(page_path)
    commands = "\n".join(command_problems(page, root_command))
    assert "page.md:4:" in commands and "--no-such-flag is not an option of `mpack build`" in commands
    assert "--ignored" not in commands
    assert "page.md:5:" in commands and "--memroy is not an option of `mpack invoke`" in commands
    assert "page.md:7:" in commands and "`mpack frobnicate` is not a command" in commands
    assert "page.md:10:" in commands and "--snapstrat is not an option of `mpack invoke`" in commands and "--snapstrat is not an option of `mpack serve`" in commands
    assert "--plan is not" not in commands and "--data is not" not in commands and "--data-file is not" not in commands
    broken = "\n".join(link_problems(page))
    assert "page.md:10:" not in broken
    assert "page.md:11: link 'missing.md'" in broken and "page.md:11: link 'other.md#nope'" in broken
    assert "#page" not in broken
    assert "page.md:13:" in "\n".join(fence_problems(page))
    loose = "\n".join(loose_option_problems(page, root_command))
    assert "page.md:17:" in loose and "--lamda-http is not an option" in loose and "--no-verify" not in loose


def test_github_slugs():
    assert github_slug("Flavors and the model's own environment") == "flavors-and-the-models-own-environment"
    assert github_slug("The micro runtime: `--runtime micro` (Lambda zips)") == "the-micro-runtime---runtime-micro-lambda-zips"
    assert github_slug("Cold start: `bench/cold_start.py`") == "cold-start-benchcold_startpy"
