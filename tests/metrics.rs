//! AUC and log-loss against scikit-learn on fixtures with heavy ties
//! (tools/make_metric_fixtures.py).

mod common;

#[test]
fn auc_and_log_loss_equal_scikit_learn() {
    let text = std::fs::read_to_string(common::repo().join("tests/fixtures/metrics.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let scores: Vec<f32> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let labels: Vec<u8> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let auc = daa::metrics::auc(&scores, &labels).unwrap();
        let expected = case["auc"].as_f64().unwrap();
        assert!(
            (auc - expected).abs() < 1e-12,
            "AUC {auc} vs scikit-learn {expected}"
        );
        let loss = daa::metrics::log_loss(&scores, &labels);
        let expected = case["log_loss"].as_f64().unwrap();
        assert!(
            (loss - expected).abs() < 1e-6,
            "log-loss {loss} vs scikit-learn {expected}"
        );
    }
}
