"""The docs a reader walks: every page reachable from the README, every config key documented once in
docs/configuration.md (checked against the schema), and the config snippets valid under the schema."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO
from rsaflow.schema import load_schema, schema_errors

DOCS = REPO / "docs"
SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")


def schema_keys(node: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(key path, description) of every key the schema names, depth first; ``<name>`` stands for a
    mapping's free keys (a model, a layer, an analysis, an external RDM)."""
    out = []
    for key, sub in (node.get("properties") or {}).items():
        path = f"{prefix}{key}"
        text = " ".join(str(sub.get(k, "")) for k in ("description",) if sub.get(k)) or str(sub.get("title", ""))
        out.append((path, " ".join(text.split())))
        out += schema_keys(sub, path + ".")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and (extra.get("properties") or extra.get("additionalProperties")):
        out += schema_keys(extra, prefix + "<name>.")
    return out


def key_table() -> str:
    """The table of docs/configuration.md's section "Every key" (``python tests/test_docs.py`` prints it)."""
    rows = ["| key | what it is |", "|---|---|"]
    for path, text in schema_keys(SCHEMA):
        short = text if len(text) <= 200 else text[:200].rsplit(" ", 1)[0] + " ..."
        rows.append(f"| `{path}` | {short.replace('|', '/')} |")
    return "\n".join(rows)


def test_every_docs_page_is_linked_from_the_readme():
    readme = (REPO / "README.md").read_text()
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert pages, "no docs pages"
    missing = [p for p in pages if f"docs/{p}" not in readme]
    assert not missing, f"docs pages not linked from README.md: {missing}"
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / link).is_file(), link


def test_every_config_key_is_documented_once():
    text = (DOCS / "configuration.md").read_text()
    assert key_table() in text, "docs/configuration.md's key table is stale: paste python tests/test_docs.py"
    for path, _ in schema_keys(SCHEMA):
        assert text.count(f"| `{path}` |") == 1, path


def yaml_blocks(page: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (DOCS / page).read_text(), re.S)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_config_snippets_validate(page):
    for block in yaml_blocks(page):
        config = yaml.safe_load(block)
        if not isinstance(config, dict) or not set(config) & set(SCHEMA["properties"]):
            continue  # not a config (a profile, a module statement)
        config.setdefault("models", {"m": {"arch": "resnet18", "weights": "none", "layers": {"a": "avgpool"}}})
        config.setdefault("stimuli", {"source": "digits"})
        errors = schema_errors(config, SCHEMA)
        assert not errors, f"{page}: {errors[0]}\n{block}"


if __name__ == "__main__":
    print(key_table())
