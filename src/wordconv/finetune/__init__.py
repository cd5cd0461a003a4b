"""Fine-tuning strategies: which pretrained weights train, and at which learning rates."""

from wordconv.finetune.strategies import FreezeSchedule, apply_strategy, open_groups, optimizer_groups

__all__ = ["FreezeSchedule", "apply_strategy", "open_groups", "optimizer_groups"]
