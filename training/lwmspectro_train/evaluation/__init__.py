"""Evaluation against baselines (issue 5): the paper's downstream tasks on the held-out
scenario, few-shot to data-rich, LWM / LWM_FT / MoE against CNN baselines trained from
scratch, with t-SNE, confusion matrices, per-SNR accuracy and a Markdown report.

Modules: splits (stratified per-trial splits), baselines (the CNNs), fit (the one
optimisation recipe), lwm (the pretrained experts, router and head), tasks (tasks and
presets), trials (the resumable trial loop), embedding_quality (t-SNE), figures, report,
run (`lwmspectro eval` end to end).
"""
