/*
 * The `oss` repository's BlobContainer for Elasticsearch 9.x: the blobs under one path, as OSS objects
 * "<path>/<name>". Writes are single PutObjects (multipart past OssStore.PART_BYTES), so a blob is never
 * seen half-written and writeBlobAtomic needs no temporary name. The operation purpose does not change
 * how OSS is called. Linearizable registers serve only repository analysis: refused.
 */
package migrator.oss;

import org.elasticsearch.action.ActionListener;
import org.elasticsearch.common.blobstore.BlobContainer;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.DeleteResult;
import org.elasticsearch.common.blobstore.OperationPurpose;
import org.elasticsearch.common.blobstore.OptionalBytesReference;
import org.elasticsearch.common.blobstore.support.AbstractBlobContainer;
import org.elasticsearch.common.blobstore.support.BlobMetadata;
import org.elasticsearch.common.bytes.BytesReference;
import org.elasticsearch.core.CheckedConsumer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

final class OssBlobContainer extends AbstractBlobContainer {
    private final OssBlobStore blobStore;
    private final String prefix;

    OssBlobContainer(BlobPath path, OssBlobStore blobStore) {
        super(path);
        this.blobStore = blobStore;
        this.prefix = path.buildAsString();
    }

    @Override
    public boolean blobExists(OperationPurpose purpose, String name) throws IOException {
        return blobStore.store().exists(prefix + name);
    }

    @Override
    public InputStream readBlob(OperationPurpose purpose, String name) throws IOException {
        return blobStore.store().read(prefix + name, 0, -1);
    }

    @Override
    public InputStream readBlob(OperationPurpose purpose, String name, long position, long length) throws IOException {
        return blobStore.store().read(prefix + name, position, length);
    }

    @Override
    public void writeBlob(OperationPurpose purpose, String name, InputStream data, long length, boolean failIfExists)
        throws IOException {
        blobStore.store().write(prefix + name, data, length, failIfExists);
    }

    @Override
    public void writeMetadataBlob(OperationPurpose purpose, String name, boolean atomic, boolean failIfExists,
                                  CheckedConsumer<OutputStream, IOException> writer) throws IOException {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        writer.accept(buffer);
        writeBlob(purpose, name, new ByteArrayInputStream(buffer.toByteArray()), buffer.size(), failIfExists);
    }

    @Override
    public void writeBlobAtomic(OperationPurpose purpose, String name, InputStream data, long length,
                                boolean failIfExists) throws IOException {
        writeBlob(purpose, name, data, length, failIfExists);
    }

    @Override
    public DeleteResult delete(OperationPurpose purpose) throws IOException {
        OssStore.Listing all = blobStore.store().list(prefix, false);
        long bytes = 0;
        for (long size : all.blobs.values()) {
            bytes += size;
        }
        blobStore.store().delete(new Prefixed(prefix, all.blobs.keySet().iterator()));
        return new DeleteResult(all.blobs.size(), bytes);
    }

    @Override
    public void deleteBlobsIgnoringIfNotExists(OperationPurpose purpose, Iterator<String> names) throws IOException {
        blobStore.store().delete(new Prefixed(prefix, names));
    }

    @Override
    public Map<String, BlobMetadata> listBlobs(OperationPurpose purpose) throws IOException {
        return listBlobsByPrefix(purpose, "");
    }

    @Override
    public Map<String, BlobContainer> children(OperationPurpose purpose) throws IOException {
        Map<String, BlobContainer> children = new HashMap<>();
        for (String name : blobStore.store().list(prefix, true).prefixes) {
            children.put(name, new OssBlobContainer(path().add(name), blobStore));
        }
        return children;
    }

    @Override
    public Map<String, BlobMetadata> listBlobsByPrefix(OperationPurpose purpose, String blobNamePrefix)
        throws IOException {
        Map<String, BlobMetadata> blobs = new HashMap<>();
        for (Map.Entry<String, Long> blob : blobStore.store().list(prefix + blobNamePrefix, true).blobs.entrySet()) {
            String name = blobNamePrefix + blob.getKey();
            blobs.put(name, new BlobMetadata(name, blob.getValue()));
        }
        return blobs;
    }

    @Override
    public void compareAndExchangeRegister(OperationPurpose purpose, String key, BytesReference expected,
                                           BytesReference updated, ActionListener<OptionalBytesReference> listener) {
        listener.onFailure(new UnsupportedOperationException(
            "the test bed's oss repository has no linearizable registers (they serve repository analysis only)"));
    }

    @Override
    public void getRegister(OperationPurpose purpose, String key, ActionListener<OptionalBytesReference> listener) {
        compareAndExchangeRegister(purpose, key, null, null, listener);
    }
}
