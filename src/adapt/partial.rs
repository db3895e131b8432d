//! Partial fine-tuning: the source model's heads (towers, gates, task-specific layers)
//! trained on target labels, its body (input layer and bottoms or experts) frozen. The
//! body's BatchNorm running statistics still follow the target rows in train mode, as
//! `requires_grad = False` leaves them in PyTorch.

use super::supervised::Supervised;
use super::{Method, Needs};
use crate::config::registry::{Kind, NO_PARAMS};

pub const PARTIAL: Kind<Method> = Kind::new(
    "partial",
    NO_PARAMS,
    Method {
        needs: |_| Needs {
            trains_body: false,
            ..Needs::FROM_SOURCE
        },
        build: Supervised::build,
    },
);
