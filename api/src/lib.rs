//! tabby's resources and datastore layer.
