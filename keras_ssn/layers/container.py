"""Shared variants of layers that rebuild their own sublayers (RNNs, attention)."""

import contextlib

from keras_ssn.keras_internals import untrack_sublayer
from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.base import as_specs
from keras_ssn.layers.base import refuse_lora
from keras_ssn.layers.variants import share_in_place


class SharedContainerMixin:
    """A layer whose sublayers generate their weights from the bank.

    Some Keras layers own sublayers that they rebuild from their own config
    (`LSTM` its cell, `MultiHeadAttention` its projections), so converting
    the sublayers alone would not survive saving. The shared variant of such
    a layer carries the sublayers' specs in its config and turns its
    sublayers into shared ones whenever it creates them.

    Args:
        sharing: Dict mapping each part name (see `shared_parts`) to the
            part's `sharing` dict.
    """

    base_class = None
    # Part name -> the attribute of the base layer that holds the sublayer.
    part_attributes = {}

    def __init__(self, *args, sharing=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_sharing(sharing)

    @classmethod
    def variant_for(cls, layer):
        """The shared class for `layer`: this one."""
        return cls

    @classmethod
    def shared_parts(cls, layer):
        """Dict mapping part names to the sublayers of `layer` that share."""
        return {
            part: getattr(layer, attribute)
            for part, attribute in cls.part_attributes.items()
        }

    def _set_sharing(self, sharing):
        if not isinstance(sharing, dict):
            raise ValueError(
                f"{type(self).__name__} needs a `sharing` dict; shared layers "
                "are created by `keras_ssn.convert(model, budget)`. "
                f"Received: sharing={sharing!r}"
            )
        object.__setattr__(
            self, "sharing", {part: as_specs(specs) for part, specs in sharing.items()}
        )

    def _share_parts(self, seed=None):
        """Turns every part into its shared variant (built or not)."""
        from keras_ssn.layers import shared_class_for  # the registry imports us

        for part, sublayer in self.shared_parts(self).items():
            if isinstance(sublayer, SharedWeightMixin):
                continue
            shared_class = shared_class_for(sublayer)
            if sublayer.built:
                share_in_place(sublayer, shared_class, self.sharing[part], seed)
                continue
            # Not built yet: replace it by a shared layer with its config.
            config = dict(sublayer.get_config(), sharing=self.sharing[part])
            attribute = self.part_attributes[part]
            delattr(self, attribute)
            untrack_sublayer(self, sublayer)
            setattr(self, attribute, shared_class.from_config(config))

    def __call__(self, *args, **kwargs):
        with contextlib.ExitStack() as stack:
            # Called on its own, the layer generates its parts' weights once
            # here, before (for an RNN) the time loop reads them each step.
            # Parts a layer creates in `build` (attention projections) do not
            # exist before its first call, which builds and shares them.
            for attribute in self.part_attributes.values():
                sublayer = getattr(self, attribute, None)
                if isinstance(sublayer, SharedWeightMixin):
                    stack.enter_context(sublayer.standalone_scope())
            return super().__call__(*args, **kwargs)

    def enable_lora(self, *args, **kwargs):
        refuse_lora(self)

    def get_config(self):
        config = super().get_config()
        config["sharing"] = {
            part: {name: spec.get_config() for name, spec in specs.items()}
            for part, specs in self.sharing.items()
        }
        return config
