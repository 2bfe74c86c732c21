// VIP board: how names and numbers are written. Pure functions, no DOM; loaded before
// board.js and tested on their own (tests/api/test_board.py).
"use strict";

(() => {
  // A name part written in CJK scripts only: Han, kana, Hangul, and the middle dots
  // that join the parts of transliterated names (阿依古丽·买买提).
  const CJK_PART = /^[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}ー·・]+$/u;

  /** Whether a name part is written in CJK characters. */
  function isCjk(part) {
    return CJK_PART.test(part);
  }

  /** A member's name as written: family name then given name, with no space between
   *  them when both are written in CJK characters (王佳琪, 山田太郎), with one otherwise
   *  (Wang Fang, 王 Anna). An empty part leaves the other alone. */
  function displayName(familyName, givenName) {
    const family = String(familyName ?? "").trim();
    const given = String(givenName ?? "").trim();
    if (!family || !given) return family || given;
    return isCjk(family) && isCjk(given) ? family + given : `${family} ${given}`;
  }

  const INTEGER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const PERCENT = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 0 });
  const DECIMAL = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  globalThis.BoardFormat = Object.freeze({
    isCjk,
    displayName,
    /** 1234567 -> "1,234,567". */
    number: (value) => INTEGER.format(value),
    /** A share 0..1 -> "26%". */
    percent: (share) => PERCENT.format(share),
    /** An average -> "4.5"; null -> "–". */
    decimal: (value) => (value === null || value === undefined ? "–" : DECIMAL.format(value)),
  });
})();
