//! The one way a date and time is written into a CRM: ISO 8601 in UTC with milliseconds
//! (`2026-11-22T09:00:00.000Z`), which HubSpot and Salesforce both read, whatever precision the
//! source had (Meta's webhooks give seconds, a Twilio event's arrival nanoseconds).

use time::OffsetDateTime;

pub fn iso_millis(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_precision_is_written_the_same_way() {
        assert_eq!(
            iso_millis(time::macros::datetime!(2026-11-22 10:00 +01:00)),
            "2026-11-22T09:00:00.000Z"
        );
        assert_eq!(
            iso_millis(time::macros::datetime!(2026-11-22 09:00:00.123456789 UTC)),
            "2026-11-22T09:00:00.123Z"
        );
    }
}
