"""Converted Functional subclasses keep their class: a backbone stays a backbone.

A `keras_hub` or `keras_cv` backbone is a subclass of Keras's Functional
model that builds its graph in its constructor and describes itself by its
constructor arguments (`get_config()`). Converting one makes it an instance
of `Shared<Class>`, a subclass of both `SharedFunctionalSubclass` and the
backbone's own class, so everything the class offers (`token_embedding`,
its `call`, `enable_lora`) still works, and its config is the backbone's
config plus the bank, the sharing plan and the base class. Loading rebuilds
the backbone from its constructor, shares its layers in place per the plan
and attaches the bank, so saving works for every backbone that saves plain.

Every `Shared<Class>` is saved under one registered name, whose
`from_config` rebuilds the right class from the config's `base_class`.
"""

import keras

from keras_ssn.copying import plain_config
from keras_ssn.keras_internals import Functional
from keras_ssn.layers import register_optional_layers
from keras_ssn.layers.variants import become
from keras_ssn.models import BankOwnerMixin
from keras_ssn.models import SharedFunctional
from keras_ssn.models import SharedSequential
from keras_ssn.models import required_bank_and_plan

PACKAGE = "keras_ssn"
NAME = "SharedFunctionalSubclass"

_SHARED_CLASSES = {}


@keras.saving.register_keras_serializable(package=PACKAGE, name=NAME)
class SharedFunctionalSubclass(BankOwnerMixin):
    """The shared form of a Functional subclass (mixed into `Shared<Class>`).

    Made by `keras_ssn.convert()` from a model such as
    `keras_hub.models.GPT2Backbone`; `isinstance(converted, GPT2Backbone)`
    holds.
    """

    base_class = None

    def get_config(self):
        config = super().get_config()  # the base class's arguments, bank, plan
        config["base_class"] = class_reference(self.base_class)
        return config

    @property
    def original_model(self):
        """The plain model this one materializes to, serialized."""
        # Models inside it (a vision encoder) describe their shared layers.
        return plain_config(dict(class_reference(self.base_class),
                                 config=self.base_class.get_config(self)))

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Every shared subclass is registered under one name, so `cls` may be
        # any of them: the class to rebuild is the config's `base_class`.
        config = dict(config)
        bank, plan = required_bank_and_plan(
            config.pop("bank", None), config.pop("sharing_plan", None))
        reference = config.pop("base_class")
        model = keras.saving.deserialize_keras_object(
            dict(reference, config=config), custom_objects=custom_objects)
        register_optional_layers()  # the model's library is imported now
        return make_shared(model, bank, plan)


def class_reference(base_class):
    """How `keras.saving` names a class: module, class name, registered name."""
    return {
        "module": base_class.__module__,
        "class_name": base_class.__name__,
        "registered_name": keras.saving.get_registered_name(base_class),
    }


def make_shared(model, bank, sharing_plan):
    """Turns a built model into its bank-owning class, in place, and attaches the bank.

    Args:
        model: A `keras.Sequential`, a Functional model or an instance of a
            Functional subclass, whose layers the plan names.
        bank: Its `WeightBank` (or the bank's config).
        sharing_plan: Its `SharingPlan` (or the plan's config).

    Returns:
        `model`.
    """
    become(model, shared_model_class(type(model)))
    model.attach_bank(bank, sharing_plan)
    return model


def shared_model_class(model_class):
    """The bank-owning class for instances of `model_class`.

    `SharedSequential` for `keras.Sequential`, `SharedFunctional` for Keras's
    Functional model, and `Shared<Class>` for a Functional subclass.
    """
    if issubclass(model_class, keras.Sequential):
        return SharedSequential
    if model_class in (Functional, keras.Model):
        return SharedFunctional
    if model_class not in _SHARED_CLASSES:
        shared = type(
            f"Shared{model_class.__name__}",
            (SharedFunctionalSubclass, model_class),
            {"base_class": model_class, "__module__": __name__,
             "__doc__": SharedFunctionalSubclass.__doc__},
        )
        # Saved under the one registered name; the name keeps resolving to
        # `SharedFunctionalSubclass` (see `from_config`).
        keras.saving.register_keras_serializable(package=PACKAGE, name=NAME)(shared)
        keras.saving.get_custom_objects()[f"{PACKAGE}>{NAME}"] = (
            SharedFunctionalSubclass)
        _SHARED_CLASSES[model_class] = shared
    return _SHARED_CLASSES[model_class]
