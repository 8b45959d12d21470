"""Every figure of the project, one file per subject; import them from here (`plots.plot_pca`).

- style.py: the shared style, sizes, the original study's colours, readable group names, PNG bytes
- embeddings.py: PCA views of embeddings (one panel, image beside text, a grid of runs)
- runs.py: one run's training curve and per-group accuracy; several runs' accuracies side by side
- dataset.py: image grids, a sample of each group's training images, what each bias level keeps
- sweep_results.py: the sweep results table (`results.summarise`) and the calibration table
- mechanism.py: caption-embedding similarities, which caption a minority image is nearest to, cue conflicts
- primary.py: the declared test (the caption effect per level, the interaction built on it)
- curves.py: the learning curves (the caption effect against the budget, convergence at bias 0)
- replication.py: how far a rerun on other CPU kernels moves a run (the measured spread)

Every function draws into a given Axes (or makes its own figure) and returns it; none calls plt.show.
"""
from .curves import plot_convergence, plot_effect_by_budget
from .dataset import image_grid, plot_bias_levels, sample_training_images
from .embeddings import pca_2d, pca_figures, pca_grid, pca_panel, plot_embeddings, plot_pca
from .mechanism import plot_background_wins, plot_caption_similarity, plot_cue_conflict
from .primary import plot_primary
from .replication import plot_rerun_differences
from .runs import plot_group_accuracy, plot_group_accuracy_comparison, plot_training_curve, plot_zero_shot
from .style import (ANIMAL_COLOURS, BACKGROUND_COLOURS, CLASS_STYLES, COLOUR_BY, GROUP_COLOURS, GROUP_LABELS,
                    PAIR_SIZE, SINGLE_SIZE, STYLE, figure_png, legend_handles, use_style)
from .sweep_results import (PROBE_REFERENCES, plot_calibration, plot_data_size,
                            plot_differences, plot_headline, plot_intervals, plot_losses, plot_probes,
                            plot_prompt_sets, plot_silhouettes, plot_variability, plot_vs_bias)
