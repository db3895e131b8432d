//! Methods without an adaptation term: the target model trains on target labels alone.
//! They differ only in where it starts and whether it trains.

use super::{AdaptError, Adaptation, Adapted, Method, Needs, Step, entry};
use crate::config::registry::Kind;
use crate::data::batch::Tensors;

/// Target rows only, from a fresh initialisation.
pub const SINGLE_DOMAIN: Kind<Method> = entry(
    "single_domain",
    supervised(
        "target rows only, fresh initialisation",
        Needs {
            source_model: false,
            source_rows: false,
            training: true,
        },
    ),
);

/// The source model evaluated on the target, untrained there.
pub const SOURCE_ONLY: Kind<Method> = entry(
    "source_only",
    supervised(
        "the source model evaluated on the target, no target training",
        Needs {
            source_model: true,
            source_rows: false,
            training: false,
        },
    ),
);

/// The source model trained further on target labels.
pub const FINETUNE: Kind<Method> = entry(
    "finetune",
    supervised(
        "initialised from the source model, trained on target labels only",
        Needs {
            source_model: true,
            source_rows: false,
            training: true,
        },
    ),
);

const fn supervised(about: &'static str, needs: Needs) -> Method {
    Method {
        about,
        needs,
        build: |_| Ok(Box::new(Supervised)),
    }
}

/// No adaptation term: the task loss alone (also source pretraining's step).
pub struct Supervised;

impl Adaptation for Supervised {
    fn forward(
        &mut self,
        step: &mut Step<'_, '_>,
        target: &Tensors,
    ) -> Result<Adapted, AdaptError> {
        Ok(Adapted {
            output: step.forward(target)?,
            term: None,
        })
    }
}
