package lake

import (
	"fmt"
	"strings"
)

// tmpPrefix starts the names of in-flight files of the file backend; key
// segments may not start with it, so Iter never confuses the two.
const tmpPrefix = ".cdclake-tmp-"

// ValidateKey checks that key is a relative, slash-separated object key that
// stays inside the bucket: not empty, not absolute, no empty, "." or ".."
// segments (so no trailing slash either), no backslash, no NUL, and no segment
// starting with ".cdclake-tmp-" (reserved for in-flight writes). The error
// wraps ErrInvalidKey.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if err := checkChars(key); err != nil {
		return err
	}
	for _, seg := range strings.Split(key, "/") {
		if err := checkSegment(key, seg); err != nil {
			return err
		}
	}
	return nil
}

// ValidatePrefix checks a prefix given to Iter. The empty prefix is valid;
// otherwise the rules of ValidateKey apply, except that the prefix may end
// with a slash and its last segment may be a partial name.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkChars(prefix); err != nil {
		return err
	}
	segs := strings.Split(prefix, "/")
	for i, seg := range segs {
		if i == len(segs)-1 && seg == "" {
			break // trailing slash
		}
		if err := checkSegment(prefix, seg); err != nil {
			return err
		}
	}
	return nil
}

func checkChars(key string) error {
	switch {
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w %q: absolute keys are not allowed", ErrInvalidKey, key)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("%w %q: backslashes are not allowed", ErrInvalidKey, key)
	case strings.ContainsRune(key, 0):
		return fmt.Errorf("%w %q: NUL bytes are not allowed", ErrInvalidKey, key)
	}
	return nil
}

func checkSegment(key, seg string) error {
	switch {
	case seg == "":
		return fmt.Errorf("%w %q: empty path segment", ErrInvalidKey, key)
	case seg == "." || seg == "..":
		return fmt.Errorf("%w %q: %q segments are not allowed", ErrInvalidKey, key, seg)
	case strings.HasPrefix(seg, tmpPrefix):
		return fmt.Errorf("%w %q: segments starting with %q are reserved", ErrInvalidKey, key, tmpPrefix)
	}
	return nil
}
