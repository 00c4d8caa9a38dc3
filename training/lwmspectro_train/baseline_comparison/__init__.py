"""The baseline comparison study (`lwmspectro eval`): the paper's downstream tasks on the
held-out scenario, few-shot to data-rich, LWM / LWM_FT / MoE against CNN baselines trained
from scratch, with t-SNE, confusion matrices, per-SNR accuracy and a Markdown report.

Not to be confused with `lwmspectro_train.heldout`, the held-out metrics of a trained run.

Modules: splits (stratified per-trial splits), baselines (the CNNs), fit (the one
optimisation recipe), lwm (the pretrained experts, router and head), tasks (tasks and
presets), trials (the resumable trial loop), embedding_quality (t-SNE), figures, report,
compare (the study end to end).
"""
