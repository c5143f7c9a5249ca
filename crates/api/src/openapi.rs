//! The OpenAPI 3 document of the API, written by hand. A test checks that it
//! lists exactly the routes of [`crate::router::routes`].

use serde_json::{json, Value};

fn svg_error(description: &str) -> Value {
    json!({
        "description": description,
        "headers": { "X-Thumbfarm-Reason": { "$ref": "#/components/headers/Reason" } },
        "content": { "image/svg+xml": { "schema": { "type": "string" } } }
    })
}

fn json_error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn hash_param() -> Value {
    json!({
        "name": "hash", "in": "path", "required": true,
        "description": "SHA-1 of the original, 40 lowercase hex characters.",
        "schema": { "type": "string", "pattern": "^[0-9a-f]{40}$" }
    })
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "thumbfarm API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Cookie-free, token-protected thumbnail URLs (PhotoPrism-compatible sizes), rendered on demand by a worker farm."
        },
        "paths": {
            "/api/v1/videos/{hash}/{token}/{format}": {
                "get": {
                    "summary": "A video's H.264/AVC MP4 (also answers HEAD), with Range requests for streaming.",
                    "description": "Serves the stored transcode (one byte range as 206; several ranges get the whole file). A missing transcode is enqueued; the request waits up to --video-wait for short videos, else answers 202 with Retry-After. Checks in order: hash (400), token (403), format (404), asset (404), asset not a video or GIF (404).",
                    "parameters": [
                        hash_param(),
                        { "name": "token", "in": "path", "required": true,
                          "description": "`public`, a preview token, or a signed token, depending on the deployment's token mode.",
                          "schema": { "type": "string", "maxLength": 64 } },
                        { "name": "format", "in": "path", "required": true,
                          "schema": { "type": "string", "enum": ["avc"] } },
                        { "name": "Range", "in": "header", "required": false, "schema": { "type": "string" } },
                        { "name": "If-Range", "in": "header", "required": false, "schema": { "type": "string" } },
                        { "name": "If-None-Match", "in": "header", "required": false, "schema": { "type": "string" } }
                    ],
                    "responses": {
                        "200": {
                            "description": "The whole MP4 (moov before mdat).",
                            "headers": {
                                "Accept-Ranges": { "schema": { "type": "string" } },
                                "ETag": { "schema": { "type": "string" } }
                            },
                            "content": { "video/mp4": { "schema": { "type": "string", "format": "binary" } } }
                        },
                        "202": {
                            "description": "The transcode is queued; retry after Retry-After seconds.",
                            "headers": { "Retry-After": { "schema": { "type": "integer" } } },
                            "content": { "application/json": { "schema": { "type": "object" } } }
                        },
                        "206": {
                            "description": "One byte range of the MP4.",
                            "headers": { "Content-Range": { "schema": { "type": "string" } } },
                            "content": { "video/mp4": { "schema": { "type": "string", "format": "binary" } } }
                        },
                        "304": { "description": "Not modified (If-None-Match matched)." },
                        "400": svg_error("Malformed hash."),
                        "403": svg_error("The token does not grant this URL."),
                        "404": svg_error("Unknown format, unknown asset, or an asset that is not a video."),
                        "416": { "description": "The range starts past the end; Content-Range: bytes */size." },
                        "422": svg_error("The video cannot be transcoded (reason in X-Thumbfarm-Reason)."),
                        "503": svg_error("A backend is unavailable; Retry-After says when to come back.")
                    }
                }
            },
            "/api/v1/t/{hash}/{token}/{size}": {
                "get": {
                    "summary": "A thumbnail (also answers HEAD).",
                    "description": "Serves the stored thumbnail, or enqueues an on-demand render and waits for it up to the configured deadline. A fit size larger than the original is served as the smallest fit size that contains it. `{size}` is a size name (JPEG, PNG for colors; with --negotiate-format the first of --formats that Accept names, answered with Vary: Accept), a size name with the format's extension (`tile_500.webp`, `tile_500.avif`, `tile_500.jpg`, `colors.png`: that format, never Vary), or `thumbhash` (the asset's ThumbHash as a small PNG). In signed mode the token covers the size and the format. Checks in order: hash (400), token (403; in signed mode an unknown size is 403), size name and format (404), dynamic size limit (404), asset (404).",
                    "parameters": [
                        hash_param(),
                        { "name": "token", "in": "path", "required": true,
                          "description": "`public`, a preview token, or a signed token, depending on the deployment's token mode.",
                          "schema": { "type": "string", "maxLength": 64 } },
                        { "name": "size", "in": "path", "required": true,
                          "description": "A size name, optionally with `.jpg`/`.png` (colors), `.webp` or `.avif`; or `thumbhash`.",
                          "schema": { "type": "string", "enum": thumbfarm_shared::sizes::Size::ALL.iter().map(|s| s.name().to_string())
                              .chain(thumbfarm_shared::Rendition::all().filter(|r| !r.is_classic()).map(|r| r.name()))
                              .chain(thumbfarm_shared::sizes::Size::ALL.iter().map(|s| format!("{}.{}", s.name(), s.format().extension())))
                              .chain(std::iter::once("thumbhash".to_string()))
                              .collect::<Vec<_>>() } },
                        { "name": "If-None-Match", "in": "header", "required": false, "schema": { "type": "string" } }
                    ],
                    "responses": {
                        "200": {
                            "description": "The thumbnail.",
                            "headers": {
                                "ETag": { "schema": { "type": "string" } },
                                "Last-Modified": { "schema": { "type": "string" } },
                                "Cache-Control": { "schema": { "type": "string" } }
                            },
                            "content": {
                                "image/jpeg": { "schema": { "type": "string", "format": "binary" } },
                                "image/png": { "schema": { "type": "string", "format": "binary" } }
                            }
                        },
                        "304": { "description": "Not modified (If-None-Match matched)." },
                        "400": svg_error("Malformed hash."),
                        "403": svg_error("The token does not grant this URL."),
                        "404": svg_error("Unknown size, size above the dynamic limit, size not applicable to this original, or unknown asset."),
                        "422": svg_error("The original cannot be rendered (reason in X-Thumbfarm-Reason)."),
                        "503": {
                            "description": "Not rendered before the deadline, or a backend is unavailable.",
                            "headers": {
                                "Retry-After": { "schema": { "type": "integer" } },
                                "X-Thumbfarm-Reason": { "$ref": "#/components/headers/Reason" }
                            },
                            "content": { "image/svg+xml": { "schema": { "type": "string" } } }
                        }
                    }
                }
            },
            "/api/v1/previews/{hash}": {
                "get": {
                    "summary": "The preview list of an asset (FotoWeb shape).",
                    "security": [ { "apiKey": [] } ],
                    "parameters": [ hash_param() ],
                    "responses": {
                        "200": {
                            "description": "Every size available for the asset, with ready URLs.",
                            "content": { "application/json": { "schema": {
                                "type": "array", "items": { "$ref": "#/components/schemas/Preview" } } } }
                        },
                        "400": json_error("Malformed hash."),
                        "401": json_error("Missing or wrong API key."),
                        "404": json_error("Unknown asset."),
                        "422": json_error("The asset's manifest is damaged; re-ingest the original.")
                    }
                }
            },
            "/api/v1/assets/{hash}/retry": {
                "post": {
                    "summary": "Clear the asset's recorded permanent failures and render those outputs again.",
                    "security": [ { "apiKey": [] } ],
                    "parameters": [ hash_param() ],
                    "responses": {
                        "200": {
                            "description": "Nothing had failed; nothing was published.",
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Retry" } } }
                        },
                        "202": {
                            "description": "Failures cleared; jobs published for the failed outputs.",
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Retry" } } }
                        },
                        "400": json_error("Malformed hash."),
                        "401": json_error("Missing or wrong API key."),
                        "404": json_error("Unknown asset."),
                        "422": json_error("The asset's manifest is damaged; re-ingest the original."),
                        "503": json_error("The store or the queue is unavailable.")
                    }
                }
            },
            "/api/v1/ingest": {
                "post": {
                    "summary": "Upload an original (the raw file is the request body).",
                    "security": [ { "apiKey": [] } ],
                    "parameters": [
                        { "name": "name", "in": "query", "required": false,
                          "description": "The file name (else from Content-Disposition); used for the extension when the bytes are not recognized.",
                          "schema": { "type": "string" } },
                        { "name": "wait", "in": "query", "required": false,
                          "description": "Wait (up to the render deadline) for the pre-generation render, so that the answer has the dimensions and the ThumbHash.",
                          "schema": { "type": "boolean" } }
                    ],
                    "requestBody": {
                        "required": true,
                        "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } }
                    },
                    "responses": {
                        "200": { "description": "Already known; nothing was enqueued.",
                                 "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IngestResult" } } } },
                        "201": { "description": "Stored; pre-generation enqueued.",
                                 "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IngestResult" } } } },
                        "400": json_error("Empty or broken body."),
                        "401": json_error("Missing or wrong API key."),
                        "413": json_error("Larger than the upload limit."),
                        "503": json_error("Store or queue unavailable.")
                    }
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": { "200": { "description": "OpenAPI 3 document.",
                                            "content": { "application/json": {} } } }
                }
            },
            "/": {
                "get": {
                    "summary": "Status page (HTML): queue depths and rates, recent failures, recent renders. Polls /api/v1/status, with the API key when one is given in the URL fragment (#key=...) or its form. No cookies. On the operator port when --admin-listen is set.",
                    "responses": {
                        "200": { "description": "The page.", "content": { "text/html": { "schema": { "type": "string" } } } },
                        "404": json_error("The status page is turned off (--status-page false).")
                    }
                }
            },
            "/api/v1/status": {
                "get": {
                    "summary": "The data of the status page. Without Authorization: the anonymous view (generic failure reasons, no store or queue names, thumbnail URLs only in public token mode). With a valid API key: the operator view.",
                    "responses": {
                        "200": { "description": "Queues, rates, recent failures and renders.",
                                 "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } } },
                        "401": json_error("An Authorization header with a key that is not one of --api-keys."),
                        "404": json_error("The status page is turned off (--status-page false).")
                    }
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: 200 while the process serves HTTP.",
                    "responses": { "200": { "description": "Alive.", "content": { "text/plain": {} } } }
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: the store and the queue answer.",
                    "responses": {
                        "200": { "description": "Ready.", "content": { "application/json": {} } },
                        "503": { "description": "Not ready; the body names what failed.", "content": { "application/json": {} } }
                    }
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics.",
                    "responses": { "200": { "description": "Text exposition format.", "content": { "text/plain": {} } } }
                }
            }
        },
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer", "description": "One of the keys in --api-keys." }
            },
            "headers": {
                "Reason": { "description": "Why the request was refused or failed.", "schema": { "type": "string" } }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "string" }, "status": { "type": "integer" } }
                },
                "Preview": {
                    "type": "object",
                    "required": ["name", "size", "width", "height", "href", "square"],
                    "properties": {
                        "name": { "type": "string" },
                        "size": { "type": "integer", "description": "max(width, height) of the actual pixels" },
                        "width": { "type": "integer" },
                        "height": { "type": "integer" },
                        "href": { "type": "string" },
                        "square": { "type": "boolean" },
                        "failed": { "type": "string", "description": "Set when this size failed permanently (generic reason); its URL answers 422 until retried." },
                        "formats": {
                            "type": "object",
                            "description": "The size in every format served (jpeg, webp, avif; colors only jpeg, its PNG), each with a URL naming the format.",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["href", "content_type", "stored"],
                                "properties": {
                                    "href": { "type": "string" },
                                    "content_type": { "type": "string" },
                                    "stored": { "type": "boolean", "description": "already rendered (else the first request renders it)" },
                                    "failed": { "type": "string" }
                                }
                            }
                        },
                        "thumbhash": { "type": "string", "description": "The asset's ThumbHash (base64), once rendered (the same on every entry)." },
                        "video": {
                            "type": "object",
                            "description": "present when the asset has a video (the same on every entry)",
                            "required": ["kind", "href"],
                            "properties": {
                                "kind": { "type": "string", "enum": ["video", "motion_photo", "live_photo", "animation"] },
                                "href": { "type": "string", "description": "the AVC MP4 at the asset's own hash" }
                            }
                        }
                    }
                },
                "Retry": {
                    "type": "object",
                    "required": ["hash", "cleared", "jobs"],
                    "properties": {
                        "hash": { "type": "string" },
                        "cleared": { "type": "array", "items": { "type": "string" }, "description": "Outputs whose failures were cleared (image, avc, size names)." },
                        "jobs": { "type": "integer" }
                    }
                },
                "Status": {
                    "type": "object",
                    "required": ["v", "access", "generated_at", "queues", "rates", "totals", "recent_failures", "recent_renders"],
                    "properties": {
                        "v": { "type": "integer" },
                        "access": { "type": "string", "enum": ["anonymous", "operator"] },
                        "generated_at": { "type": "string", "format": "date-time" },
                        "store": { "type": "string", "nullable": true, "description": "Operator view only." },
                        "queue": { "type": "string", "nullable": true, "description": "Operator view only." },
                        "queues": { "type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "queue": { "type": "string" },
                                "ready": { "type": "integer" },
                                "unacked": { "type": "integer" },
                                "consumers": { "type": "integer" },
                                "ready_change_per_min": { "type": "number", "nullable": true }
                            }
                        } },
                        "queues_as_of": { "type": "string", "nullable": true },
                        "queues_error": { "type": "string", "nullable": true },
                        "rates": { "type": "object", "additionalProperties": { "type": "number", "nullable": true } },
                        "totals": { "type": "object", "additionalProperties": { "type": "integer" } },
                        "recent_failures": { "type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "hash": { "type": "string" },
                                "reason": { "type": "string", "description": "The worker's reason (operator view) or a generic one (anonymous view)." },
                                "kind": { "type": "string", "enum": ["unsupported", "undecodable", "over_limits", "original_missing", "timed_out", "crashed", "other"] },
                                "permanent": { "type": "boolean" }, "at": { "type": "string" }
                            }
                        } },
                        "recent_renders": { "type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "hash": { "type": "string" }, "sizes": { "type": "array", "items": { "type": "string" } },
                                "at": { "type": "string" }, "thumb_url": { "type": "string", "nullable": true }
                            }
                        } }
                    }
                },
                "IngestResult": {
                    "type": "object",
                    "required": ["hash", "media_type", "new", "previews"],
                    "properties": {
                        "hash": { "type": "string" },
                        "media_type": { "type": "string" },
                        "new": { "type": "boolean" },
                        "previews": { "type": "array", "items": { "$ref": "#/components/schemas/Preview" } },
                        "thumbhash": { "type": "string", "description": "The ThumbHash (base64), once the render job has run (see ?wait=true)." }
                    }
                }
            }
        }
    })
}
