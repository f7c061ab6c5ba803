"""Training techniques that are not optimizers or callbacks of the loop itself: the Bag of
Freebies (catalog 1902.04103: mixup, detection mixup, label smoothing, no bias decay; its cosine
schedule and warm-up are ``dlskills.optim.schedules.build_schedule``) and the large-minibatch
check (catalog 1706.02677; the rule and warm-up are ``dlskills.optim.schedules``); decoupled
training with delayed gradients (catalog 1906.09108, ``decoupled``); the consensus-of-models
prediction filter (catalog 1901.06566, ``consensus``); layer-wise training then fusion (catalog
1905.07490, ``layerwise``); ensembles trained with the modular loss (catalog 1902.04422,
``ensemble``); co-teaching under label noise (catalog 1905.07202, ``coteaching``); targeted
sparsity regularisation (catalog 2002.09237, ``targeted_sparsity``); ROI regularisation (catalog
1905.08615, ``roi``)."""

from dlskills.train.techniques.consensus import (
    ConsensusFilter,
    ConsensusPrediction,
    ConsensusReport,
    consensus_report,
)
from dlskills.train.techniques.coteaching import (
    CoTeaching,
    coteaching_loss,
    noisy_labels,
    small_loss_selection,
)
from dlskills.train.techniques.decoupled import (
    DecoupledArm,
    DelayedGradientTrainer,
    decoupled_check,
    plot_decoupled,
    split_sequential,
)
from dlskills.train.techniques.ensemble import (
    Ensemble,
    EnsembleStatistics,
    ModularLoss,
    combine,
    ensemble_of,
    ensemble_statistics,
    modular_loss,
)
from dlskills.train.techniques.label_smoothing import (
    LabelSmoothingCrossEntropy,
    smooth_targets,
    soft_cross_entropy,
)
from dlskills.train.techniques.large_batch import (
    ArmResult,
    LargeBatchResult,
    large_batch_check,
)
from dlskills.train.techniques.layerwise import (
    LayerwiseResult,
    layerwise_check,
    train_layerwise,
)
from dlskills.train.techniques.mixup import (
    MixedBatch,
    Mixup,
    mixup_batch,
    mixup_detection,
    sample_lambda,
)
from dlskills.train.techniques.no_bias_decay import param_groups_no_bias_decay
from dlskills.train.techniques.roi import block_contributions, roi_mask, roi_regularization
from dlskills.train.techniques.targeted_sparsity import (
    TargetedSparsity,
    activation_sparsity,
)

__all__ = [
    "ArmResult",
    "CoTeaching",
    "ConsensusFilter",
    "ConsensusPrediction",
    "ConsensusReport",
    "DecoupledArm",
    "DelayedGradientTrainer",
    "Ensemble",
    "EnsembleStatistics",
    "LabelSmoothingCrossEntropy",
    "LargeBatchResult",
    "LayerwiseResult",
    "MixedBatch",
    "Mixup",
    "ModularLoss",
    "TargetedSparsity",
    "activation_sparsity",
    "block_contributions",
    "combine",
    "consensus_report",
    "coteaching_loss",
    "decoupled_check",
    "ensemble_of",
    "ensemble_statistics",
    "large_batch_check",
    "layerwise_check",
    "mixup_batch",
    "mixup_detection",
    "modular_loss",
    "noisy_labels",
    "param_groups_no_bias_decay",
    "plot_decoupled",
    "roi_mask",
    "roi_regularization",
    "sample_lambda",
    "small_loss_selection",
    "smooth_targets",
    "soft_cross_entropy",
    "split_sequential",
    "train_layerwise",
]
