//! Fine-tuning: the source model trained further on target labels, every parameter.

use super::supervised::Supervised;
use super::{Method, Needs};
use crate::config::registry::{Kind, NO_PARAMS};

pub const FINETUNE: Kind<Method> = Kind::new(
    "finetune",
    NO_PARAMS,
    Method {
        needs: |_| Needs::FROM_SOURCE,
        build: Supervised::build,
    },
);
