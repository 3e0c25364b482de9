package config

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/limits"
)

// loadMetadataDir reads the limits sections from metadata_dir, when set.
// A section given both inline and in the directory is an error: one of
// them would be silently ignored.
func loadMetadataDir(c *File) error {
	if c.MetadataDir == "" {
		return nil
	}
	al, ic, err := limits.LoadMetadataDir(c.MetadataDir)
	if err != nil {
		return err
	}
	var errs []error
	if al != nil {
		if !reflect.DeepEqual(c.APILimits, limits.Config{}) {
			errs = append(errs, fmt.Errorf("api_limits: also in metadata_dir (%s); keep one", limits.MetadataAPILimitsFile))
		}
		c.APILimits = *al
	}
	if ic != nil {
		if len(c.Introspection.DisabledForRoles) > 0 {
			errs = append(errs, fmt.Errorf("graphql_schema_introspection: also in metadata_dir (%s); keep one", limits.MetadataIntrospectionFile))
		}
		c.Introspection = *ic
	}
	return errors.Join(errs...)
}
