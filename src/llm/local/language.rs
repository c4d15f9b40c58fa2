//! Which language the user writes in: English, Hindi (Devanagari) or Hinglish
//! (Hindi in Latin letters).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    English,
    Hindi,
    Hinglish,
}

const HINGLISH_WORDS: [&str; 24] = [
    "kya", "hai", "hain", "kaise", "kaisa", "samjhao", "samjha", "batao", "mujhe", "mera", "meri",
    "yeh", "ye", "karo", "karta", "karti", "kyun", "kyon", "nahi", "accha", "aur", "bhai",
    "matlab", "kuch",
];

pub fn detect(text: &str) -> Language {
    let devanagari = text
        .chars()
        .filter(|c| ('\u{0900}'..='\u{097F}').contains(c))
        .count();
    let letters = text.chars().filter(|c| c.is_alphabetic()).count().max(1);
    if devanagari * 3 >= letters {
        return Language::Hindi;
    }
    let hinglish = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| HINGLISH_WORDS.contains(&word.to_lowercase().as_str()))
        .count();
    if hinglish >= 2 {
        Language::Hinglish
    } else {
        Language::English
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_three_languages() {
        assert_eq!(detect("Explain this function please"), Language::English);
        assert_eq!(detect("यह फ़ंक्शन क्या करता है?"), Language::Hindi);
        assert_eq!(
            detect("yeh function kya karta hai? samjhao"),
            Language::Hinglish
        );
    }
}
