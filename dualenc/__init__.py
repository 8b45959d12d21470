"""dualenc: does descriptive captioning help a CLIP-style dual encoder overcome a biased dataset?"""
import getpass as _getpass
import os as _os
import tempfile as _tempfile

# torch.compile's on-disk cache does not key on the CPU kernel settings: a step compiled under this
# CPU's own ISA and reused under ATEN_CPU_CAPABILITY=avx2 / ONEDNN_MAX_CPU_ISA=AVX2 gave NaN losses
# from step 0 (measured). One cache per setting, unless the user chose a cache folder.
_os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", _os.path.join(
    _tempfile.gettempdir(), f"torchinductor_{_getpass.getuser()}",
    f"cpu-{_os.environ.get('ATEN_CPU_CAPABILITY', 'default')}-{_os.environ.get('ONEDNN_MAX_CPU_ISA', 'default')}"))
from .config import (DataConfig, ExperimentConfig, ModelConfig, TextConfig, TrainConfig, VisionConfig,
                     ConfigError, config_hash, from_dict)

__all__ = ["DataConfig", "ExperimentConfig", "ModelConfig", "TextConfig", "TrainConfig", "VisionConfig",
           "ConfigError", "config_hash", "from_dict"]
__version__ = "0.1.0"
