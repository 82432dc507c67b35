"""Turning a model's planned layers into their shared variants, in place."""

from keras_ssn.keras_internals import unlocked
from keras_ssn.layer_paths import walk_layers
from keras_ssn.layers import is_container
from keras_ssn.layers import is_shared
from keras_ssn.layers import share_in_place
from keras_ssn.layers import shared_class_for
from keras_ssn.layers.variants import become
from keras_ssn.selection import Candidate


def share_candidate(candidate, plan, seed=None):
    """Turns one candidate layer (and its parts) into its shared variant."""
    sharing = {}
    for path, (part, _, name) in candidate.weight_paths().items():
        sharing.setdefault(part, {})[name] = plan.weights[path]
    if not is_container(candidate.shared_class):
        share_in_place(candidate.layer, candidate.shared_class, sharing[""], seed)
        return
    for part, owner, owner_class in candidate.parts:
        share_in_place(owner, owner_class, sharing[part], seed)
    layer = candidate.layer
    with unlocked(layer):
        become(layer, candidate.shared_class)
        layer._set_sharing(sharing)


def share_planned_layers(model, plan):
    """Shares the layers of `model` that `plan` covers but that are still plain.

    Custom layers and subclassed models create their sublayers from their
    own arguments, so a loaded model gets them back plain; this turns them
    into their shared variants again (before the saved weights are read).

    Args:
        model: A built model or layer.
        plan: The `SharingPlan` it was converted with.
    """
    for path, layer in walk_layers(model):
        shared_class = shared_class_for(layer)
        if shared_class is None or is_shared(layer):
            continue
        candidate = Candidate.of(path, layer, shared_class)
        paths = candidate.weight_paths()
        if paths and all(p in plan.weights for p in paths):
            share_candidate(candidate, plan)
