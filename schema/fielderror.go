package schema

import "fmt"

// FieldError is a configuration problem tied to one key. Field is the dotted
// path of the key from the root of the configuration file, with list indexes
// in brackets ("snmp.targets[2].address"); the service turns it into a file
// and line number. Packages that own a configuration section return
// FieldErrors (joined with errors.Join) from their Validate methods, with
// Field relative to their section; the caller prefixes it with Prefix.
type FieldError struct {
	Field string
	Err   error
}

// Error renders "field: message".
func (e *FieldError) Error() string { return fmt.Sprintf("%s: %v", e.Field, e.Err) }

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a *FieldError for field with a formatted message.
func Errorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
