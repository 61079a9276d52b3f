"""Checks a student can run on their own answers to the book's exercises.

Each ``check_*`` takes the student's function, module or value and either prints a short confirmation or
raises ``AssertionError`` with a message that names the mistake. A stub (``...``, ``None``,
``raise NotImplementedError``) never passes.

Example:
    >>> from dropoutlib.exercises import check_keep_prob_conversion
"""

from dropoutlib.exercises.activations import (
    check_active_units,
    check_dead_unit_fraction,
    check_dropout_noise_variance,
)
from dropoutlib.exercises.batchnorm import (
    check_mixed_variance,
    check_recalibrate_batchnorm,
    check_train_mode_variance,
)
from dropoutlib.exercises.bugs import (
    check_eval_determinism_test,
    check_mc_predict,
    check_output_dropout_optimum,
)
from dropoutlib.exercises.coadaptation import (
    check_ablation_importance,
    check_copies_equilibrium,
    check_gini,
)
from dropoutlib.exercises.convolutions import (
    check_neighbour_correlation,
    check_spatial_dropout,
)
from dropoutlib.exercises.dropout_family import (
    check_alpha_constants,
    check_drop_path,
    check_gaussian_dropout,
)
from dropoutlib.exercises.ensemble import (
    check_exact_average,
    check_normalized_geometric_mean,
    check_renormalized_drop_rate,
)
from dropoutlib.exercises.from_scratch import (
    check_bitwise_dropout,
    check_dropout,
    check_dropout_backward,
    check_units_needed,
    check_zero_gradient_move,
    check_zero_gradient_pairs,
)
from dropoutlib.exercises.fused_dropout import (
    check_dropout_traffic,
    check_philox_round,
    check_uniform_at,
)
from dropoutlib.exercises.mc_dropout import (
    check_auroc,
    check_expected_calibration_error,
    check_mutual_information,
)
from dropoutlib.exercises.overfitting import (
    check_collapsed_line,
    check_draws_needed,
    check_expected_kept_units,
    check_mask_probability,
    check_subnetwork_count,
    check_total_variation,
    check_underfitting,
)
from dropoutlib.exercises.training_vs_inference import (
    check_all_ones_unit_std,
    check_dropout_module_modes,
    check_dropout_unit_test,
    check_keep_prob_conversion,
    check_test_time_weight_scaling,
)
from dropoutlib.exercises.weight_decay import (
    check_dropout_penalty,
    check_dropout_ridge_solution,
    check_equivalent_weight_decay,
    check_standard_dropout_loss,
)
from dropoutlib.exercises.when_it_helps import (
    check_idx_header,
    check_paired_gain,
    check_units_for_dropout,
)

__all__ = [
    "check_ablation_importance",
    "check_active_units",
    "check_all_ones_unit_std",
    "check_alpha_constants",
    "check_auroc",
    "check_bitwise_dropout",
    "check_collapsed_line",
    "check_copies_equilibrium",
    "check_dead_unit_fraction",
    "check_draws_needed",
    "check_drop_path",
    "check_dropout",
    "check_dropout_backward",
    "check_dropout_module_modes",
    "check_dropout_noise_variance",
    "check_dropout_penalty",
    "check_dropout_ridge_solution",
    "check_dropout_traffic",
    "check_dropout_unit_test",
    "check_equivalent_weight_decay",
    "check_eval_determinism_test",
    "check_exact_average",
    "check_expected_calibration_error",
    "check_expected_kept_units",
    "check_gaussian_dropout",
    "check_gini",
    "check_idx_header",
    "check_keep_prob_conversion",
    "check_mask_probability",
    "check_mc_predict",
    "check_mixed_variance",
    "check_mutual_information",
    "check_neighbour_correlation",
    "check_normalized_geometric_mean",
    "check_output_dropout_optimum",
    "check_paired_gain",
    "check_philox_round",
    "check_recalibrate_batchnorm",
    "check_renormalized_drop_rate",
    "check_spatial_dropout",
    "check_standard_dropout_loss",
    "check_subnetwork_count",
    "check_test_time_weight_scaling",
    "check_total_variation",
    "check_train_mode_variance",
    "check_underfitting",
    "check_uniform_at",
    "check_units_for_dropout",
    "check_units_needed",
    "check_zero_gradient_move",
    "check_zero_gradient_pairs",
]
