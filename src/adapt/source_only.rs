//! The source model evaluated on the target, untrained there: what transfer gives for free.

use super::supervised::Supervised;
use super::{Method, Needs};
use crate::config::registry::{Kind, NO_PARAMS};

pub const SOURCE_ONLY: Kind<Method> = Kind::new(
    "source_only",
    NO_PARAMS,
    Method {
        needs: |_| Needs {
            training: false,
            ..Needs::FROM_SOURCE
        },
        build: Supervised::build,
    },
);
