//! Single-domain training: target rows only, from a fresh initialisation (with the source
//! pretraining's optimiser settings, as MTReclib trains single-domain models).

use super::supervised::Supervised;
use super::{Method, Needs};
use crate::config::registry::{Kind, NO_PARAMS};

pub const SINGLE_DOMAIN: Kind<Method> = Kind::new(
    "single_domain",
    NO_PARAMS,
    Method {
        needs: |_| Needs {
            source_model: false,
            ..Needs::FROM_SOURCE
        },
        build: Supervised::build,
    },
);
