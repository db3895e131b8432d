//! CPU kernels compiled once per vector width and picked at run time.
//!
//! daa is built for baseline x86-64 (SSE2), where the compiler vectorises a kernel's loop
//! two f64 or four f32 lanes wide. [`widest!`] compiles the same body again with AVX2 and
//! with AVX-512 enabled and calls the widest one the CPU has. Rust never contracts a
//! multiply and an add into a fused multiply-add, and lanes are independent, so every
//! version computes the same bits.

/// Defines `fn $name(args)` whose body runs compiled for the widest vector unit available.
macro_rules! widest {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) {
                    portable($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

pub(crate) use widest;
