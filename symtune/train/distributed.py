"""What symtune asks of accelerate's backends: settings checked before any weights load, a process
group that outlasts a long save, and errors that reach every process instead of leaving the others
waiting at the next barrier."""

from datetime import timedelta

from symtune.errors import SymtuneError
from symtune.train.recipe import Recipe

# Process 0 writes checkpoints and the final model alone while the others wait at a barrier; the
# collectives' default timeout (10 minutes under NCCL) is shorter than writing an 8B model's weights
# and optimizer state to a slow shared file system.
PROCESS_GROUP_TIMEOUT = timedelta(hours=3)


def make_accelerator():
    import torch
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    return Accelerator(cpu=not torch.accelerator.is_available(),  # cpu=True: gloo when launched on CPUs
                       kwargs_handlers=[InitProcessGroupKwargs(timeout=PROCESS_GROUP_TIMEOUT)])


def zero_stage(accelerator) -> int:
    """The DeepSpeed ZeRO stage, 0 when not under DeepSpeed."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return 0
    return int(accelerator.state.deepspeed_plugin.deepspeed_config.get("zero_optimization", {}).get("stage", 0))


def check_setup(accelerator, recipe: Recipe) -> None:
    """Refuse what a backend would run differently from the recipe, or fail at only after training;
    fill in the DeepSpeed settings that the recipe decides."""
    from accelerate.utils import DistributedType

    kind, stage = accelerator.distributed_type, zero_stage(accelerator)
    if recipe.lora and recipe.merge_lora and (kind == DistributedType.FSDP or stage == 3):
        raise SymtuneError("merge_lora is not supported with sharded weights (FSDP, ZeRO-3): save the adapter "
                           "(merge_lora: false); symtune.models.load_model(run_dir) merges it when loading")
    if kind != DistributedType.DEEPSPEED:
        return
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    if recipe.micro_batch_tokens:
        raise SymtuneError("micro_batch_tokens must be null under DeepSpeed, whose backward also steps the optimizer")
    if config.get("gradient_accumulation_steps", 1) not in (1, "auto"):
        raise SymtuneError("the DeepSpeed config's gradient_accumulation_steps must be 1: symtune runs one forward "
                           "and backward per process and step")
    if recipe.optimizer == "adafactor" and stage >= 1:
        # ZeRO hands the optimizer one flat 1-D partition per parameter group, and Adafactor factors its
        # second moments only for 2-D parameters: it would silently run unfactored, another update rule
        raise SymtuneError(f"optimizer adafactor cannot run under DeepSpeed ZeRO-{stage}, which flattens the "
                           f"parameters so that Adafactor stops factoring; use optimizer: adamw, or DDP / FSDP")
    clip = recipe.max_grad_norm or 0.0  # DeepSpeed clips (0: never) and accelerate's clip_grad_norm_ does not
    if config.get("gradient_clipping", "auto") not in ("auto", clip):
        raise SymtuneError(f"the DeepSpeed config's gradient_clipping {config['gradient_clipping']} differs from the "
                           f"recipe's max_grad_norm {recipe.max_grad_norm}: set it to \"auto\" (the recipe decides)")
    config["gradient_clipping"] = clip
    gather = config.get("zero_optimization", {}).get("stage3_gather_16bit_weights_on_model_save", False)
    if stage == 3 and gather is not True:
        raise SymtuneError("under ZeRO-3 the final model can only be saved with "
                           "zero_optimization.stage3_gather_16bit_weights_on_model_save: true in the DeepSpeed config")


def first_error(accelerator, error: str | None, what: str) -> str | None:
    """Every process tells the others whether `what` failed for it (its error, or None); returns the
    error this process should raise: its own, else the first other process's, else None. Every process
    must call it, so that none is left waiting at the next barrier for one that stopped."""
    from accelerate.utils import gather_object

    errors = gather_object([error])
    failed = [(rank, e) for rank, e in enumerate(errors) if e]
    if error or not failed:
        return error
    rank, first = failed[0]
    return f"process {rank} failed {what}: {first}"
