"""Models that own the weight bank their shared layers read.

Keras shares layer instances, not bare variables, so the bank is a layer and
the *model* owns it: it is a tracked attribute of the model (saved once, under
the model) and every shared layer holds an untracked reference to it. The
bank's config and the sharing plan are part of the model config, so
`keras.models.load_model()` rebuilds the same model with no custom objects.
"""

import dataclasses
import re
import warnings

import keras

from keras_ssn import engine
from keras_ssn import recipes
from keras_ssn.backends import check_backend
from keras_ssn.backends import check_distribution_scope
from keras_ssn.bank import WeightBank
from keras_ssn.keras_internals import Functional
from keras_ssn.keras_internals import build_shapes
from keras_ssn.keras_internals import in_symbolic_scope
from keras_ssn.keras_internals import set_build_shapes
from keras_ssn.keras_internals import set_weight_decay_exclusions
from keras_ssn.keras_internals import sublayers
from keras_ssn.keras_internals import weight_decay_exclusions
from keras_ssn.layer_paths import walk_layers
from keras_ssn.layers import GENERATION_PARAM_NAMES
from keras_ssn.layers import SharedContainerMixin
from keras_ssn.layers import is_shared
from keras_ssn.layers import register_optional_layers
from keras_ssn.layers.base import refuse_quantization
from keras_ssn.plan import DamagedPlanError
from keras_ssn.plan import SharingPlan
from keras_ssn.sharing import share_planned_layers


class BankOwnerMixin:
    """Model behaviour shared by `SharedFunctional` and `SharedSequential`."""

    def attach_bank(self, bank, sharing_plan):
        """Makes this model own `bank` and points every shared layer at it.

        Args:
            bank: A `WeightBank` or its serialized config.
            sharing_plan: A `SharingPlan` or its config dict.
        """
        check_backend()
        if isinstance(bank, dict):
            bank = keras.saving.deserialize_keras_object(bank)
        if isinstance(sharing_plan, dict):
            sharing_plan = SharingPlan.from_config(sharing_plan)
        if not isinstance(bank, WeightBank):
            raise TypeError(f"Expected a WeightBank; received {bank!r}.")
        sharing_plan.check(bank.size)
        share_planned_layers(self.converted_model(), sharing_plan)
        check_layer_specs(self.converted_model(), sharing_plan)
        self.bank = bank
        self.sharing_plan = sharing_plan
        object.__setattr__(self, "_weight_owners", None)
        for layer in self.shared_layers():
            layer.attach_bank(bank)

    def quantize(self, *args, **kwargs):
        """Refused: call `keras_ssn.materialize(model)`, then quantize that.

        Raises:
            ValueError: always; a converted model's shared layers own no
                weights to quantize.
        """
        refuse_quantization(self)

    def call(self, inputs, training=None, mask=None, **kwargs):
        with self.generation_scope():
            return super().call(inputs, training=training, mask=mask, **kwargs)

    def generation_scope(self):
        """Generates every shared weight once and lets the layers read them.

        Weight generation runs once per forward pass, one parameter group at
        a time (see `keras_ssn.engine`); the regularization losses of the
        generated weights are added here too, from the same tensors.
        """
        if in_symbolic_scope() or engine.is_covered(self):
            return engine.scope(engine.GeneratedWeights())
        if self.bank is None:
            raise ValueError(
                f"Model '{self.name}' has shared layers but no WeightBank: "
                "`keras.models.clone_model()` copies a converted model's "
                "layers without the bank it owns, so copy it with "
                "`keras_ssn.clone_model()`, which takes the same arguments."
            )
        owners = self.weight_owners()
        if self.sharing_plan.rematerialize:
            generated = recipes.generated_weights(self.bank, owners.values())
        else:
            generated = engine.generate_groups(self.bank, self.sharing_plan, owners)
        losses = [
            regularizer(generated.get(layer, name))
            for layer, name, regularizer in self._regularized_weights(owners)
        ]
        if losses:
            self.add_loss(losses)
        object.__setattr__(self, "_regularization_loss_ids", {id(x) for x in losses})
        generated.add(self, None, None)  # marks this model as covered
        return engine.scope(generated)

    def _regularized_weights(self, owners):
        for layer, name in owners.values():
            regularizer = layer.regularizer_of(name)
            if regularizer is not None:
                yield layer, name, regularizer

    def _get_regularization_losses(self):
        """Adds the regularization of generated weights to Keras's own.

        A forward pass adds them as it generates the weights; outside one
        (`model.losses` before any call), the weights are generated here.
        """
        losses = super()._get_regularization_losses()
        added = getattr(self, "_regularization_loss_ids", set())
        if any(id(loss) in added for loss in self._get_own_losses()):
            return losses
        for layer, name, regularizer in self._regularized_weights(self.weight_owners()):
            losses.append(regularizer(layer.generate_weight(name)))
        return losses

    def weight_owners(self):
        """Dict mapping each weight path of the plan to `(layer, weight name)`.

        Weights whose layer is not built yet (an attention layer builds its
        projections on first call) are left out until it is.
        """
        if self._weight_owners is not None:
            return self._weight_owners
        owners = {
            path: (owner, name)
            for path, owner, name, _ in shared_slots(self.converted_model())
            if is_shared(owner) and owner.built
        }
        owners = {p: owners[p] for p in self.sharing_plan.weights if p in owners}
        if len(owners) == len(self.sharing_plan.weights):
            object.__setattr__(self, "_weight_owners", owners)
        return owners

    @property
    def variables(self):
        return _with_bank_variables(super().variables, self)

    @property
    def weights(self):
        return _with_bank_variables(super().weights, self)

    def converted_model(self):
        """The model whose layer paths the sharing plan names."""
        return self

    def shared_layers(self):
        """All layers of this model, nested ones included, that use the bank."""
        return _shared_layers_of(self)

    def get_config(self):
        config = super().get_config()
        config["bank"] = keras.saving.serialize_keras_object(self.bank)
        config["sharing_plan"] = self.sharing_plan.get_config()
        return config

    def compile(self, *args, **kwargs):
        """Same as `keras.Model.compile`; also keeps weight decay off coefficients.

        Template coefficients decide how templates mix, not how large weights
        are, so (as in the paper) optimizer weight decay does not apply to
        them, nor to the other learned generation parameters (layer
        embeddings, coefficient maps, upsampling masks and mixes). To decay them too, call
        `model.optimizer.exclude_from_weight_decay()` with your own list after
        `compile()`.

        Warns when a shared layer is frozen (`trainable = False`) while the
        bank trains: its weight is generated from the bank and would still
        change. Convert with `exclude=` naming it to freeze it.
        """
        check_distribution_scope(self)
        super().compile(*args, **kwargs)
        exclude_coefficients_from_weight_decay(self.optimizer)
        warn_frozen_shared_layers(self)

    def compute_loss_and_updates(self, *args, **kwargs):
        """Keras's JAX loss function; per device under `DataParallel`.

        Under `keras.distribution.DataParallel` on JAX, each device
        generates the weights from the bank and reduces their gradients into
        the bank itself, so the devices exchange the gradients of the
        trainable variables only (see `keras_ssn.data_parallel`).
        """
        from keras_ssn import data_parallel  # imports JAX

        sharding = data_parallel.batch_axis()
        if sharding is None:
            return super().compute_loss_and_updates(*args, **kwargs)
        return data_parallel.compute_loss_and_updates(self, *sharding, *args, **kwargs)

    def compile_from_config(self, config):
        if self.bank is None:
            return  # a `clone_model` copy: `keras_ssn.clone_model` compiles it
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if hasattr(self, "optimizer") and self.built:
            self.optimizer.build(self.trainable_variables)

def _with_bank_variables(variables, model):
    """Adds the bank's variables to a model's list, once.

    Functional models reach the bank through their tracked layers, but
    Sequential keeps its own list of layers, so the bank is added here.
    """
    bank = getattr(model, "bank", None)
    if bank is None:
        return variables
    seen = {id(v) for v in variables}
    return variables + [v for v in bank.variables if id(v) not in seen]


def required_bank_and_plan(bank, sharing_plan):
    """`(bank, sharing_plan)`, or a `ValueError` when either is missing.

    A converted model is always made with both: by `convert()`, by
    `keras_ssn.clone_model()`, or from a config that
    holds them.
    """
    missing = [name for name, value in (("bank", bank), ("sharing_plan", sharing_plan))
               if value is None]
    if missing:
        raise ValueError(
            f"A converted model needs its {' and '.join(missing)}, which this "
            "config lacks: the file is damaged or was saved by another version "
            "of keras_ssn. Convert the original model again, or load a file "
            "saved with this version."
        )
    return bank, sharing_plan


def _shared_layers_of(model):
    return [layer for layer in sublayers(model) if is_shared(layer)]


def shared_slots(model):
    """`(weight path, owner layer, weight name, spec)` of every shared weight.

    A shared container (an RNN, `MultiHeadAttention`) holds its parts'
    specs; the owner is the part, which may not be built or shared yet.
    """
    parts = set()
    for path, layer in walk_layers(model):
        if isinstance(layer, SharedContainerMixin):
            owners = layer.shared_parts(layer)
            parts.update(id(owner) for owner in owners.values())
            for part, part_specs in layer.sharing.items():
                for name, spec in part_specs.items():
                    yield f"{path}/{part}/{name}", owners.get(part), name, spec
        elif is_shared(layer) and id(layer) not in parts:
            for name, spec in layer.sharing.items():
                yield f"{path}/{name}", layer, name, spec


def layer_specs(model):
    """Dict mapping each weight path to the spec its shared layer holds."""
    return {path: spec for path, _, _, spec in shared_slots(model)}


def check_layer_specs(model, plan):
    """Checks that every shared layer holds the spec the model's plan has.

    Raises:
        DamagedPlanError: A layer has no spec in the plan, a planned weight
            has no layer, or a layer's spec differs from the plan's.
    """
    specs = layer_specs(model)
    for path in sorted(set(specs) | set(plan.weights)):
        if path not in plan.weights:
            raise DamagedPlanError(f"layer weight '{path}' is missing from the plan")
        if path not in specs:
            raise DamagedPlanError(f"the plan names '{path}', which no layer holds")
        if specs[path] != plan.weights[path]:
            fields = [
                field.name for field in dataclasses.fields(specs[path])
                if getattr(specs[path], field.name)
                != getattr(plan.weights[path], field.name)
            ]
            raise DamagedPlanError(
                f"'{path}' holds a spec whose {', '.join(fields)} differs from "
                "the model's plan"
            )


def warn_frozen_shared_layers(model):
    """Warns when frozen shared layers read a bank that keeps training.

    `trainable = False` freezes what a layer owns; a shared layer's weight is
    generated from the bank, which the model's other layers keep training, so
    the frozen layer's weight still changes.
    """
    trained = {id(variable) for variable in model.trainable_variables}
    if not any(id(piece) in trained for piece in model.bank.pieces):
        return  # the bank is frozen too (itself, or with the whole model)
    frozen = [
        path for path, layer in walk_layers(model.converted_model())
        if is_shared(layer) and not layer.trainable
    ]
    if frozen:
        warnings.warn(
            f"Layers {frozen} are frozen (trainable=False) but generate their "
            "weights from the shared bank, which the other layers keep "
            "training, so their weights will still change. To freeze them, "
            "convert with exclude= naming them (or the model that holds "
            "them), so that they keep their own weights; or freeze the whole "
            "bank with `model.bank.trainable = False`.",
            stacklevel=3,
        )


def exclude_coefficients_from_weight_decay(optimizer):
    """Adds generation parameters to the optimizer's weight-decay exclusions.

    Exclusions the user set before (by variable or by name) are kept.
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if optimizer is None or not getattr(optimizer, "weight_decay", None):
        return
    pattern, keys = weight_decay_exclusions(optimizer)
    # The user's names arrive joined into one regular expression; kept whole
    # as one alternative, since any name may itself contain `|`.
    names = [f"(?:{pattern.pattern})"] if pattern is not None else []
    set_weight_decay_exclusions(
        optimizer, names + [re.escape(name) for name in GENERATION_PARAM_NAMES], keys
    )


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedFunctional(BankOwnerMixin, Functional):
    """A Functional model whose shared layers generate weights from its bank.

    Made by `keras_ssn.convert()`. The constructor takes Functional's
    arguments plus the two that make the model self-describing.

    Args:
        *args: Functional's positional arguments (`inputs`, `outputs`).
        bank: The `WeightBank` (or its config) the model owns.
        sharing_plan: The `SharingPlan` (or its config).
        original_model: The serialized original model when it was a
            Functional subclass (e.g. a `keras_hub` backbone), whose class
            `materialize()` gives back.
        **kwargs: Functional's keyword arguments.
    """

    def __init__(self, *args, bank=None, sharing_plan=None, original_model=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.original_model = original_model
        if bank is None and sharing_plan is None:
            self.bank = None  # made by `clone_model`; `keras_ssn.clone_model` attaches
            return
        self.attach_bank(*required_bank_and_plan(bank, sharing_plan))

    @classmethod
    def from_config(cls, config, custom_objects=None):
        required_bank_and_plan(config.get("bank"), config.get("sharing_plan"))
        register_optional_layers(config)
        return super().from_config(config, custom_objects=custom_objects)

    def get_config(self):
        config = super().get_config()
        # Models converted in place get the attribute only from Functional
        # subclasses (see `copy_model`).
        original = getattr(self, "original_model", None)
        if original is not None:
            config["original_model"] = original
        return config


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedSequential(BankOwnerMixin, keras.Sequential):
    """A Sequential model whose shared layers generate weights from its bank.

    Made by `keras_ssn.convert()`.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        bank, sharing_plan = required_bank_and_plan(
            config.pop("bank", None), config.pop("sharing_plan", None)
        )
        register_optional_layers(config)
        model = super().from_config(config, custom_objects=custom_objects)
        model.attach_bank(bank, sharing_plan)
        return model


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedModel(BankOwnerMixin, keras.Model):
    """A converted subclassed model: the model, plus the bank its layers read.

    Made by `keras_ssn.convert()` from a subclassed model. The layers inside
    `model` generate their weights from the bank; calling this model calls
    `model`. Saving stores `model`'s config (so its class must be
    registered, as for saving it plain), the bank and the sharing plan.

    Args:
        model: The converted subclassed model (or its serialized config), built.
        bank: The `WeightBank` (or its config) the model owns.
        sharing_plan: The `SharingPlan` (or its config).
        model_build_config: How to build `model` when it comes as a config.
        **kwargs: `keras.Model` keyword arguments (`name`, `trainable`, ...).
    """

    def __init__(self, model, bank=None, sharing_plan=None, model_build_config=None,
                 **kwargs):
        if isinstance(model, dict):
            register_optional_layers(model)
            model = keras.saving.deserialize_keras_object(model)
            model.build_from_config(model_build_config)
        kwargs.setdefault("name", model.name)
        super().__init__(**kwargs)
        self.model = model
        set_build_shapes(self, build_shapes(model))
        self.built = True
        self.attach_bank(*required_bank_and_plan(bank, sharing_plan))

    def converted_model(self):
        return self.model

    def call(self, *args, **kwargs):
        with self.generation_scope():
            return self.model(*args, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model": keras.saving.serialize_keras_object(self.model),
            "model_build_config": self.model.get_build_config(),
            "bank": keras.saving.serialize_keras_object(self.bank),
            "sharing_plan": self.sharing_plan.get_config(),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

