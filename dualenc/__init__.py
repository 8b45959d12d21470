"""dualenc: does descriptive captioning help a CLIP-style dual encoder overcome a biased dataset?"""
from .config import (DataConfig, ExperimentConfig, ModelConfig, TextConfig, TrainConfig, VisionConfig,
                     ConfigError, config_hash, from_dict)

__all__ = ["DataConfig", "ExperimentConfig", "ModelConfig", "TextConfig", "TrainConfig", "VisionConfig",
           "ConfigError", "config_hash", "from_dict"]
__version__ = "0.1.0"
