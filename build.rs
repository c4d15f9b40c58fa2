//! Marks the integration tests that need a service as ignored (never silently passed) when
//! the variable naming that service is unset at build time. CI sets both and fails on any
//! ignored test.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rustc-check-cfg=cfg(redis_tests)");
    for (var, cfg) in [
        ("TEST_POSTGRES_URL", "postgres_tests"),
        ("TEST_REDIS_URL", "redis_tests"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var(var).is_ok_and(|value| !value.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
