<?php

declare(strict_types=1);

namespace ApiKeys;

use FFI;
use FFI\CData;

/**
 * A store handle from apikeys_store_open, which this package must close:
 * KeyStore::close() closes it, and so does its destructor when the
 * KeyStore is freed without a close() (never throwing there). Apart from
 * KeyStore so that a persistent KeyStore, whose handle the library owns,
 * has no destructor to run on every request.
 *
 * @internal
 */
final class OwnedStoreHandle
{
    public function __construct(private readonly FFI $ffi, private ?CData $handle)
    {
    }

    /** Flushes usage and closes the file; throws what apikeys_store_close reports. */
    public function close(): void
    {
        $handle = $this->handle;
        $this->handle = null;
        if ($handle !== null) {
            $status = $this->ffi->apikeys_store_close($handle);
            if ($status !== Status::OK) {
                throw ApiKeysException::fromStatus($status);
            }
        }
    }

    public function __destruct()
    {
        // A forgotten store still gets its usage counts flushed.
        try {
            $this->close();
        } catch (\Throwable) {
        }
    }
}
