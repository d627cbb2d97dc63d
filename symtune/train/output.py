"""What a finished run leaves beside its weights: the step log's loss curve and the model card."""

import json
from pathlib import Path

import yaml

from symtune import __version__
from symtune.io import pyplot, save_figure


def plot_loss(log: list[dict], path: Path) -> None:
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in log], [r["loss"] for r in log], linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (completion tokens)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def model_card(base_model: str, mixtures: dict, recipe: dict, summary: dict) -> str:
    """README.md of a tuned model: base model, data manifests, recipe and symtune version."""
    front = {"library_name": "peft" if recipe["lora"] and not recipe["merge_lora"] else "transformers",
             "base_model": base_model, "tags": ["symtune", "symbol-tuning"]}
    data = "\n".join(f"- `{path}`: {json.dumps(manifest, ensure_ascii=False)}" for path, manifest in mixtures.items())
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# Symbol-tuned {base_model}

Tuned with [symtune](https://pypi.org/project/symtune/) {__version__} from `{base_model}`:
{"a LoRA adapter" if front["library_name"] == "peft" else "full weights"}, loss on the completion tokens only.

## Run

{summary_lines(summary)}

## Data (mixture manifests)

{data}

## Recipe

```yaml
{yaml.safe_dump(recipe, sort_keys=False).strip()}
```
"""


def summary_lines(summary: dict) -> str:
    return "\n".join(f"- {key.replace('_', ' ')}: {value}" for key, value in summary.items())
