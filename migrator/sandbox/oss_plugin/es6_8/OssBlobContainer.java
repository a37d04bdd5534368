/*
 * The `oss` repository's BlobContainer for Elasticsearch 6.8: the blobs under one path, as OSS objects
 * "<path>/<name>". Writes are single PutObjects (multipart past OssStore.PART_BYTES), so a blob is never
 * seen half-written and writeBlobAtomic (the interface's default) needs no temporary name. 6.8's interface
 * deletes one blob at a time and has no children() or delete() of a whole container.
 */
package migrator.oss;

import org.elasticsearch.common.blobstore.BlobMetaData;
import org.elasticsearch.common.blobstore.BlobPath;
import org.elasticsearch.common.blobstore.support.AbstractBlobContainer;
import org.elasticsearch.common.blobstore.support.PlainBlobMetaData;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import java.util.Collections;
import java.util.HashMap;
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
    public boolean blobExists(String name) {
        try {
            return blobStore.store().exists(prefix + name);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public InputStream readBlob(String name) throws IOException {
        return blobStore.store().read(prefix + name, 0, -1);
    }

    @Override
    public void writeBlob(String name, InputStream data, long length, boolean failIfExists) throws IOException {
        blobStore.store().write(prefix + name, data, length, failIfExists);
    }

    /** NoSuchFileException when the blob is absent, as 6.8's deleteBlobIgnoringIfNotExists expects. */
    @Override
    public void deleteBlob(String name) throws IOException {
        if (!blobStore.store().exists(prefix + name)) {
            throw new NoSuchFileException("[" + prefix + name + "] blob not found");
        }
        blobStore.store().delete(Collections.singletonList(prefix + name).iterator());
    }

    @Override
    public Map<String, BlobMetaData> listBlobs() throws IOException {
        return listBlobsByPrefix("");
    }

    @Override
    public Map<String, BlobMetaData> listBlobsByPrefix(String blobNamePrefix) throws IOException {
        Map<String, BlobMetaData> blobs = new HashMap<>();
        for (Map.Entry<String, Long> blob : blobStore.store().list(prefix + blobNamePrefix, true).blobs.entrySet()) {
            String name = blobNamePrefix + blob.getKey();
            blobs.put(name, new PlainBlobMetaData(name, blob.getValue()));
        }
        return blobs;
    }
}
