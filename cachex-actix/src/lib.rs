//! actix-web plugin for cachex: cached functions as request dependencies and singletons as `web::Data`; it arrives with the singletons and plugin issue.
