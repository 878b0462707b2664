//! Result mapping for the Upload Indicators API. Its answers have the same shape as the STIX
//! objects API's (`200` + `errors[]` with `recordIndex` and `validationErrorMessages` as seed
//! `004` names it, or `errorMessages` as Microsoft Learn shows it; otherwise the `default`
//! answer `{"error":{"code","message"}}`, a `400` when no indicator was published), so the
//! mapping is shared; this module names it for the target so each target keeps the same three
//! parts.

pub use crate::upload::sentinel_stix::mapping::{map_success, permanent};

#[cfg(test)]
mod tests {
    use super::*;
    use ti_core::report::Code;

    #[test]
    fn the_openapi_spelling_maps_to_its_record() {
        let out = map_success(
            2,
            br#"{"errors":[{"recordIndex":1,"validationErrorMessages":["Invalid pattern"]}]}"#,
        );
        assert!(out[0].is_none());
        let f = out[1].as_ref().unwrap();
        assert_eq!(f.code, Code::RejectedByService);
        assert_eq!(f.messages, vec!["Invalid pattern"]);
    }
}
