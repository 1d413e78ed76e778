package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"
)

// The request bindings: gin's binding.Binding interface with a validator of
// our own. gin's stock JSON binding accepts unknown fields unless a
// process-wide switch is flipped, and its validator reports Go field names;
// these reject unknown fields and name fields as the client wrote them.

// newValidator returns a validator that reads `binding` tags (as gin's
// does) and names fields by their JSON member or query parameter.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.SetTagName("binding")
	v.RegisterTagNameFunc(wireName)
	return v
}

// wireName is the name a client uses for a struct field.
func wireName(f reflect.StructField) string {
	for _, key := range []string{"json", "form"} {
		name, _, _ := strings.Cut(f.Tag.Get(key), ",")
		if name == "-" {
			return ""
		}
		if name != "" {
			return name
		}
	}
	return f.Name
}

// jsonBinding decodes a JSON body strictly (see decodeStrict) and then
// validates it.
type jsonBinding struct {
	validate *validator.Validate
}

var _ binding.Binding = jsonBinding{}

// Name names the binding, for gin.
func (jsonBinding) Name() string { return "json" }

// Bind decodes req's body into obj and validates it. Errors are
// *requestError values, or the body reader's *http.MaxBytesError.
func (b jsonBinding) Bind(req *nethttp.Request, obj any) error {
	data, err := readBody(req.Body)
	if err != nil {
		return decodeError(err)
	}
	if err := decodeStrict(data, obj); err != nil {
		return err
	}
	return validationError(b.validate.Struct(obj))
}

func errEmptyBody() error {
	return invalidRequest(`the request body is empty; send a JSON object such as {"type": "noop"}`)
}

// decodeError explains a decoding error in the client's terms.
func decodeError(err error) error {
	var (
		tooLarge  *nethttp.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return errEmptyBody()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidRequest("the request body is not valid JSON: it ends too soon")
	case errors.As(err, &syntax):
		return invalidRequest("the request body is not valid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)
	case errors.As(err, &wrongType):
		if wrongType.Field == "" {
			return invalidRequest("the request body must be a JSON object, not %s", wrongType.Value)
		}
		return validationFailed(FieldError{Field: wrongType.Field, Message: "must be " + kindName(wrongType.Type)})
	}
	// encoding/json has no error type for an unknown field, only this text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return validationFailed(FieldError{Field: strings.Trim(name, `"`), Message: "is not a known field"})
	}
	return invalidRequest("the request body is not valid JSON: %s", err.Error())
}

// kindName names a Go type as a JSON value, for messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// queryBinding maps the query string into obj with gin's form mapping
// (`form` tags, with defaults) and then validates it.
type queryBinding struct {
	validate *validator.Validate
}

var _ binding.Binding = queryBinding{}

// Name names the binding, for gin.
func (queryBinding) Name() string { return "query" }

// Bind maps req's query string into obj and validates it. Empty parameters
// count as absent, so "?status=" lists every status. Errors are
// *requestError values.
func (b queryBinding) Bind(req *nethttp.Request, obj any) error {
	values, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return invalidRequest("the query string is malformed: %s", err.Error())
	}
	for key, vs := range values {
		kept := vs[:0]
		for _, v := range vs {
			if v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(values, key)
		} else {
			values[key] = kept
		}
	}
	if err := binding.MapFormWithTag(obj, values, "form"); err != nil {
		return mappingError(obj, values, err)
	}
	return validationError(b.validate.Struct(obj))
}

// mappingError names the parameters that failed to convert (gin's error
// does not): it maps each one alone into a fresh value of obj's type.
func mappingError(obj any, values url.Values, err error) error {
	t := reflect.TypeOf(obj).Elem()
	var fields []FieldError
	for i := range t.NumField() {
		f := t.Field(i)
		name := wireName(f)
		vs, ok := values[name]
		if !ok {
			continue
		}
		probe := reflect.New(t).Interface()
		if binding.MapFormWithTag(probe, url.Values{name: vs}, "form") != nil {
			elem := f.Type
			if elem.Kind() == reflect.Slice {
				elem = elem.Elem()
			}
			fields = append(fields, FieldError{Field: name, Message: "must be " + kindName(elem)})
		}
	}
	if len(fields) == 0 {
		return invalidRequest("the query string is invalid: %s", err.Error())
	}
	return validationFailed(fields...)
}

// validationError turns the validator's errors into a 400 listing the
// fields. A nil error stays nil; an error that is not about the input (a
// misuse of the validator) is returned as is and so becomes internal.
func validationError(err error) error {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return err
	}
	fields := make([]FieldError, len(verrs))
	for i, fe := range verrs {
		name := fe.Field()
		// The namespace starts with the struct's Go name; drop it and keep
		// the path of wire names ("status[1]").
		if _, path, ok := strings.Cut(fe.Namespace(), "."); ok {
			name = path
		}
		fields[i] = FieldError{Field: name, Message: ruleMessage(fe)}
	}
	return validationFailed(fields...)
}

// ruleMessage says in words which rule a field broke.
func ruleMessage(fe validator.FieldError) string {
	unit := ""
	if fe.Kind() == reflect.String {
		unit = " characters"
	}
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min", "gte":
		return fmt.Sprintf("must be at least %s%s", fe.Param(), unit)
	case "max", "lte":
		return fmt.Sprintf("must be at most %s%s", fe.Param(), unit)
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	}
	return fmt.Sprintf("breaks the %q rule", fe.Tag())
}
