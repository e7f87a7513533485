"""ganforge: a PyTorch workbench for Generative Adversarial Networks.

The Python API in brief::

    import ganforge
    cfg = ganforge.load_config("ring8-mlp", overrides={"train.steps": 2000})
    run_dir = ganforge.Trainer(cfg, "runs/ring8").fit()
    run = ganforge.load_run(run_dir)
    x = run.sample(1000)                      # (1000, 2) float32
    G, D = ganforge.build("dcgan", (1, 28, 28))
"""

__version__ = "0.1.0"

from ganforge.config import ExperimentConfig, TrainConfig, list_presets, load_config  # noqa: E402
from ganforge.data import build_dataset  # noqa: E402
from ganforge.errors import GanforgeError  # noqa: E402
from ganforge.models import build  # noqa: E402
from ganforge.train import Trainer, load_run  # noqa: E402

__all__ = ["ExperimentConfig", "GanforgeError", "TrainConfig", "Trainer", "__version__", "build",
           "build_dataset", "list_presets", "load_config", "load_run"]
