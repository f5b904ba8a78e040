//! Amounts on the command line: decimal coins (`1.5`) by default, base units with `--raw`.

use primitives::types::Amount;

/// Why an amount given on the command line is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing given.
    #[error("invalid amount {0:?}: empty")]
    Empty(String),
    /// A leading minus sign.
    #[error("invalid amount {0:?}: negative amounts are not allowed")]
    Negative(String),
    /// More than 18 decimal places.
    #[error("invalid amount {0:?}: at most {1} decimal places")]
    TooManyDecimals(String, usize),
    /// A fraction of a base unit (with `--raw`, or in a fee).
    #[error("invalid amount {0:?}: with --raw or in a fee, amounts are whole base units")]
    FractionalBaseUnits(String),
    /// Not digits with at most one '.'.
    #[error("invalid amount {0:?}: expected a decimal number such as 1.5")]
    NotANumber(String),
    /// Larger than a u128 of base units.
    #[error("invalid amount {0:?}: too large (the most is {max} coins)", max = Amount(u128::MAX).to_coins_string())]
    Overflow(String),
}

/// Parses `text` as decimal coins, or as base units (an integer) when `raw`.
pub fn parse_amount(text: &str, raw: bool) -> Result<Amount, AmountError> {
    let s = text.trim();
    let own = || text.to_string();
    if s.is_empty() {
        return Err(AmountError::Empty(own()));
    }
    if s.starts_with('-') {
        return Err(AmountError::Negative(own()));
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return Err(AmountError::NotANumber(own()));
    }
    let decimals = if raw { 0 } else { Amount::DECIMALS };
    if s.contains('.') && raw && !frac.chars().all(|c| c == '0') {
        return Err(AmountError::FractionalBaseUnits(own()));
    }
    if frac.len() > decimals && !raw {
        return Err(AmountError::TooManyDecimals(own(), decimals));
    }
    let int_v: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| AmountError::Overflow(own()))?
    };
    if raw {
        return Ok(Amount(int_v));
    }
    let mut frac_v: u128 = 0;
    for c in frac.bytes().chain(std::iter::repeat(b'0')).take(decimals) {
        frac_v = frac_v * 10 + u128::from(c - b'0');
    }
    int_v
        .checked_mul(Amount::COIN)
        .and_then(|v| v.checked_add(frac_v))
        .map(Amount)
        .ok_or_else(|| AmountError::Overflow(own()))
}

/// Parses a fee override: base units, an integer.
pub fn parse_base_units(text: &str) -> Result<Amount, AmountError> {
    parse_amount(text, true)
}

/// Coins as a decimal string without trailing zeros, e.g. `1.5`.
pub fn coins(a: Amount) -> String {
    a.to_coins_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(
            parse_amount("1.5", false).unwrap(),
            Amount(15 * Amount::COIN / 10)
        );
        assert_eq!(parse_amount("1", false).unwrap(), Amount::coins(1));
        assert_eq!(
            parse_amount("0.5", false).unwrap(),
            Amount(Amount::COIN / 2)
        );
        assert_eq!(parse_amount(".5", false).unwrap(), Amount(Amount::COIN / 2));
        assert_eq!(parse_amount("2.", false).unwrap(), Amount::coins(2));
        assert_eq!(parse_amount("0", false).unwrap(), Amount::ZERO);
        assert_eq!(
            parse_amount("0.000000000000000001", false).unwrap(),
            Amount(1)
        );
        assert_eq!(
            parse_amount("1.100000000000000000", false).unwrap(),
            Amount(11 * Amount::COIN / 10)
        );
        assert_eq!(parse_amount(" 3 ", false).unwrap(), Amount::coins(3));
    }

    #[test]
    fn raw_base_units() {
        assert_eq!(parse_amount("1500", true).unwrap(), Amount(1500));
        assert_eq!(parse_amount("1500.000", true).unwrap(), Amount(1500));
        assert_eq!(
            parse_amount("1.5", true),
            Err(AmountError::FractionalBaseUnits("1.5".into()))
        );
        assert_eq!(
            parse_amount(&u128::MAX.to_string(), true).unwrap(),
            Amount(u128::MAX)
        );
    }

    #[test]
    fn too_many_digits() {
        assert_eq!(
            parse_amount("0.0000000000000000001", false),
            Err(AmountError::TooManyDecimals(
                "0.0000000000000000001".into(),
                18
            ))
        );
    }

    #[test]
    fn negative() {
        assert_eq!(
            parse_amount("-1", false),
            Err(AmountError::Negative("-1".into()))
        );
        assert_eq!(
            parse_amount("-0.5", true),
            Err(AmountError::Negative("-0.5".into()))
        );
    }

    #[test]
    fn overflow() {
        // u128::MAX base units is about 3.4e20 coins.
        assert_eq!(
            parse_amount("340282366920938463464", false),
            Err(AmountError::Overflow("340282366920938463464".into()))
        );
        assert!(parse_amount("340282366920938463463.374607431768211455", false).is_ok());
        assert!(matches!(
            parse_amount("340282366920938463463.374607431768211456", false),
            Err(AmountError::Overflow(_))
        ));
        assert!(matches!(
            parse_amount("340282366920938463463374607431768211456", true),
            Err(AmountError::Overflow(_))
        ));
        assert!(matches!(
            parse_amount(&"9".repeat(60), false),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn not_numbers() {
        for bad in [
            "", " ", ".", "1.2.3", "1e5", "0x10", "1,5", "abc", "+1", "1 000",
        ] {
            assert!(parse_amount(bad, false).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_amount("", false),
            Err(AmountError::Empty(String::new()))
        );
        assert_eq!(coins(Amount(15 * Amount::COIN / 10)), "1.5");
    }
}
