/*
 * The `oss` repository's BlobContainer for Elasticsearch 7.10: the blobs under one path, as OSS
 * objects "<path>/<name>". Writes are single PutObjects (multipart past OssStore.PART_BYTES), so a blob is
 * never seen half-written and writeBlobAtomic needs no temporary name.
 */
package migrator.oss;

import org.elasticsearch.common.blobstore.BlobContainer;
import org.elasticsearch.common.blobstore.BlobMetadata;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.DeleteResult;
import org.elasticsearch.common.blobstore.support.AbstractBlobContainer;
import org.elasticsearch.common.blobstore.support.PlainBlobMetadata;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.List;
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
    public boolean blobExists(String name) throws IOException {
        return blobStore.store().exists(prefix + name);
    }

    @Override
    public InputStream readBlob(String name) throws IOException {
        return blobStore.store().read(prefix + name, 0, -1);
    }

    @Override
    public InputStream readBlob(String name, long position, long length) throws IOException {
        return blobStore.store().read(prefix + name, position, length);
    }

    @Override
    public void writeBlob(String name, InputStream data, long length, boolean failIfExists) throws IOException {
        blobStore.store().write(prefix + name, data, length, failIfExists);
    }

    @Override
    public void writeBlobAtomic(String name, InputStream data, long length, boolean failIfExists) throws IOException {
        writeBlob(name, data, length, failIfExists);
    }

    @Override
    public DeleteResult delete() throws IOException {
        OssStore.Listing all = blobStore.store().list(prefix, false);
        long bytes = 0;
        for (long size : all.blobs.values()) {
            bytes += size;
        }
        blobStore.store().delete(new Prefixed(prefix, all.blobs.keySet().iterator()));
        return new DeleteResult(all.blobs.size(), bytes);
    }

    @Override
    public void deleteBlobsIgnoringIfNotExists(List<String> names) throws IOException {
        blobStore.store().delete(new Prefixed(prefix, names.iterator()));
    }

    @Override
    public Map<String, BlobMetadata> listBlobs() throws IOException {
        return listBlobsByPrefix("");
    }

    @Override
    public Map<String, BlobContainer> children() throws IOException {
        Map<String, BlobContainer> children = new HashMap<>();
        for (String name : blobStore.store().list(prefix, true).prefixes) {
            children.put(name, new OssBlobContainer(path().add(name), blobStore));
        }
        return children;
    }

    @Override
    public Map<String, BlobMetadata> listBlobsByPrefix(String blobNamePrefix) throws IOException {
        Map<String, BlobMetadata> blobs = new HashMap<>();
        for (Map.Entry<String, Long> blob : blobStore.store().list(prefix + blobNamePrefix, true).blobs.entrySet()) {
            String name = blobNamePrefix + blob.getKey();
            blobs.put(name, new PlainBlobMetadata(name, blob.getValue()));
        }
        return blobs;
    }
}
