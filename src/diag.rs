//! Diagnostics: user-actionable errors and warnings with a location, a path, what is
//! wrong and a hint. Pure data + formatting; collected, never thrown one at a time.
