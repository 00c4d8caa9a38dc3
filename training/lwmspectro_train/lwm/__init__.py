"""LWM, the channel foundation model of the LWM paper, on the transformer LWM-Spectro shares.

model: the encoder and masked channel modelling; data: the channel corpus; train: configs and
the resumable pretraining; export: the channel model bundle; downstream: LoS/NLoS and beam
prediction against raw channels; command: `lwmspectro lwm pretrain|export|downstream`.
"""
