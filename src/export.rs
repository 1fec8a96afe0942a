//! Spreadsheet exports as German Excel opens them: CSV with `;` between fields, UTF-8
//! with a byte-order mark (without it Excel reads UTF-8 as Windows-1252 and breaks every
//! umlaut), CRLF line ends, and no cell that Excel would run as a formula.

/// The byte-order mark Excel looks for.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// A cell Excel would take for a formula (`=`, `+`, `-`, `@`, or a leading tab or CR
/// that it strips first) gets a leading apostrophe, so it stays text (CSV injection).
fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// The CSV file: `header`, then `rows`, each cell made safe and quoted where needed.
pub fn csv<I>(header: &[&str], rows: I) -> Result<Vec<u8>, csv::Error>
where
    I: IntoIterator<Item = Vec<String>>,
{
    let mut out = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(BOM.to_vec());
    out.write_record(header)?;
    for row in rows {
        out.write_record(row.iter().map(|v| cell(v).into_owned()))?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// A time as German Excel reads it, in the school's zone: `07.12.2026 09:15`.
pub fn local_time(at: Option<chrono::NaiveDateTime>, tz: chrono_tz::Tz) -> String {
    at.map(|t| {
        t.and_utc()
            .with_timezone(&tz)
            .format("%d.%m.%Y %H:%M")
            .to_string()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_reads_umlauts_separators_and_no_formulas() {
        let file = csv(
            &["Name", "Schule"],
            vec![
                vec!["iPad 7b; Platz 3".to_string(), "Gymnasium Süd".to_string()],
                vec![
                    "=HYPERLINK(\"http://x\")".to_string(),
                    "\"Nord\"".to_string(),
                ],
                vec!["-1".to_string(), String::new()],
            ],
        )
        .unwrap();
        assert!(file.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with BOM");
        let text = std::str::from_utf8(&file[3..]).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "Name;Schule");
        assert_eq!(lines[1], "\"iPad 7b; Platz 3\";Gymnasium Süd");
        assert_eq!(
            lines[2],
            "\"'=HYPERLINK(\"\"http://x\"\")\";\"\"\"Nord\"\"\""
        );
        assert_eq!(lines[3], "'-1;");
        assert_eq!(lines[4], "", "ends with CRLF");
    }

    #[test]
    fn times_are_local_and_in_the_german_form() {
        let winter = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .unwrap()
            .and_hms_opt(9, 15, 0);
        assert_eq!(
            local_time(winter, chrono_tz::Europe::Berlin),
            "07.12.2026 10:15"
        );
        let summer = chrono::NaiveDate::from_ymd_opt(2027, 6, 1)
            .unwrap()
            .and_hms_opt(9, 15, 0);
        assert_eq!(
            local_time(summer, chrono_tz::Europe::Berlin),
            "01.06.2027 11:15"
        );
        assert_eq!(local_time(None, chrono_tz::Europe::Berlin), "");
    }
}
