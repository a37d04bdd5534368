/*
 * The test bed's `oss` repository type: the part that talks to OSS, through the Aliyun OSS Java SDK.
 * It knows nothing of Elasticsearch's interfaces, so every API generation's folder (es7_10, es7_17, ...)
 * shares it. Every SDK call runs inside AccessController.doPrivileged: the 7.x nodes run a security
 * manager and grant the plugin's own code (plugin-security.policy) the network permission.
 */
package migrator.oss;

import com.aliyun.oss.ClientBuilderConfiguration;
import com.aliyun.oss.OSS;
import com.aliyun.oss.OSSClientBuilder;
import com.aliyun.oss.OSSException;
import com.aliyun.oss.common.auth.DefaultCredentialProvider;
import com.aliyun.oss.common.comm.SignVersion;
import com.aliyun.oss.model.CompleteMultipartUploadRequest;
import com.aliyun.oss.model.DeleteObjectsRequest;
import com.aliyun.oss.model.GetObjectRequest;
import com.aliyun.oss.model.InitiateMultipartUploadRequest;
import com.aliyun.oss.model.ListObjectsV2Request;
import com.aliyun.oss.model.ListObjectsV2Result;
import com.aliyun.oss.model.OSSObjectSummary;
import com.aliyun.oss.model.ObjectMetadata;
import com.aliyun.oss.model.PartETag;
import com.aliyun.oss.model.PutObjectRequest;
import com.aliyun.oss.model.UploadPartRequest;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.security.AccessController;
import java.security.PrivilegedActionException;
import java.security.PrivilegedExceptionAction;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One bucket of an OSS endpoint; keys are absolute ("base/path/name"). */
public final class OssStore implements AutoCloseable {
    /** Writes longer than this go up as an OSS multipart upload of parts this long (bytes). */
    public static final long PART_BYTES = 8L * 1024 * 1024;
    private static final int DELETE_BATCH = 1000;

    private final OSS client;
    private final String bucket;

    /**
     * A client for one bucket. signatureVersion is "1" or "4" (4 needs region, e.g. "cn-hangzhou");
     * securityToken may be null or empty (then no STS token is sent).
     */
    public OssStore(String endpoint, String accessKeyId, String secretAccessKey, String securityToken,
                    String bucket, String region, String signatureVersion) {
        this.bucket = bucket;
        ClientBuilderConfiguration conf = new ClientBuilderConfiguration();
        conf.setUseReaper(false); // no idle-connection thread: the node's thread rules stay untouched
        conf.setMaxErrorRetry(3);
        String token = securityToken == null || securityToken.isEmpty() ? null : securityToken;
        DefaultCredentialProvider credentials = new DefaultCredentialProvider(accessKeyId, secretAccessKey, token);
        OSSClientBuilder.OSSClientBuilderImpl builder = OSSClientBuilder.create().endpoint(endpoint)
            .credentialsProvider(credentials).clientConfiguration(conf);
        if ("4".equals(signatureVersion)) {
            conf.setSignatureVersion(SignVersion.V4);
            builder.region(region);
        } else {
            conf.setSignatureVersion(SignVersion.V1);
        }
        this.client = privileged(builder::build);
    }

    public boolean exists(String key) throws IOException {
        return call(() -> client.doesObjectExist(bucket, key));
    }

    /** The object from position for length bytes (length < 0: to the end); NoSuchFileException if missing. */
    public InputStream read(String key, long position, long length) throws IOException {
        if (length == 0) {
            return new ByteArrayInputStream(new byte[0]);
        }
        GetObjectRequest request = new GetObjectRequest(bucket, key);
        if (position > 0 || length > 0) {
            request.setRange(position, length < 0 ? -1 : position + length - 1);
            request.addHeader("x-oss-range-behavior", "standard");
        }
        return call(() -> client.getObject(request).getObjectContent());
    }

    /**
     * Store length bytes of data as key: one PutObject, or a multipart upload when longer than PART_BYTES.
     * failIfExists sends x-oss-forbid-overwrite (FileAlreadyExistsException when OSS answers 409).
     */
    public void write(String key, InputStream data, long length, boolean failIfExists) throws IOException {
        ObjectMetadata metadata = new ObjectMetadata();
        if (failIfExists) {
            metadata.setHeader("x-oss-forbid-overwrite", "true");
        }
        if (length <= PART_BYTES) {
            metadata.setContentLength(length);
            call(() -> client.putObject(new PutObjectRequest(bucket, key, data, metadata)));
            return;
        }
        String uploadId = call(() -> client.initiateMultipartUpload(
            new InitiateMultipartUploadRequest(bucket, key, metadata)).getUploadId());
        try {
            List<PartETag> parts = new ArrayList<>();
            long done = 0;
            for (int number = 1; done < length; number++) {
                long size = Math.min(PART_BYTES, length - done);
                UploadPartRequest part = new UploadPartRequest(bucket, key, uploadId, number, data, size);
                parts.add(call(() -> client.uploadPart(part).getPartETag()));
                done += size;
            }
            CompleteMultipartUploadRequest complete = new CompleteMultipartUploadRequest(bucket, key, uploadId, parts);
            if (failIfExists) {
                complete.addHeader("x-oss-forbid-overwrite", "true");
            }
            call(() -> client.completeMultipartUpload(complete));
        } catch (IOException | RuntimeException e) {
            try {
                call(() -> {
                    client.abortMultipartUpload(new com.aliyun.oss.model.AbortMultipartUploadRequest(bucket, key, uploadId));
                    return null;
                });
            } catch (IOException abortFailure) {
                e.addSuppressed(abortFailure);
            }
            throw e;
        }
    }

    /** Objects directly under prefix (name after the prefix -> bytes) and, with a delimiter, the
     * common prefixes (their names after the prefix, without the trailing '/'). */
    public Listing list(String prefix, boolean delimited) throws IOException {
        Listing listing = new Listing();
        String token = null;
        do {
            ListObjectsV2Request request = new ListObjectsV2Request(bucket, prefix);
            request.setMaxKeys(1000);
            if (delimited) {
                request.setDelimiter("/");
            }
            request.setContinuationToken(token);
            ListObjectsV2Result page = call(() -> client.listObjectsV2(request));
            for (OSSObjectSummary summary : page.getObjectSummaries()) {
                listing.blobs.put(summary.getKey().substring(prefix.length()), summary.getSize());
            }
            for (String common : page.getCommonPrefixes()) {
                listing.prefixes.add(common.substring(prefix.length(), common.length() - 1));
            }
            token = page.isTruncated() ? page.getNextContinuationToken() : null;
        } while (token != null);
        return listing;
    }

    /** Delete keys (absent ones too), in batches of 1,000. */
    public void delete(Iterator<String> keys) throws IOException {
        List<String> batch = new ArrayList<>();
        while (keys.hasNext()) {
            batch.add(keys.next());
            if (batch.size() == DELETE_BATCH || !keys.hasNext()) {
                DeleteObjectsRequest request = new DeleteObjectsRequest(bucket).withKeys(new ArrayList<>(batch));
                request.setQuiet(true);
                call(() -> client.deleteObjects(request));
                batch.clear();
            }
        }
    }

    @Override
    public void close() {
        client.shutdown();
    }

    /** A listing: blobs (name -> bytes) and common prefixes. */
    public static final class Listing {
        public final Map<String, Long> blobs = new LinkedHashMap<>();
        public final List<String> prefixes = new ArrayList<>();
    }

    private static <T> T privileged(PrivilegedExceptionAction<T> action) {
        try {
            return AccessController.doPrivileged(action);
        } catch (PrivilegedActionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    /** Run an SDK call with the plugin's permissions; OSS's NoSuchKey and FileAlreadyExists become the
     * java.nio exceptions Elasticsearch expects, any other failure an IOException. */
    private static <T> T call(PrivilegedExceptionAction<T> action) throws IOException {
        try {
            return AccessController.doPrivileged(action);
        } catch (PrivilegedActionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException) {
                throw (IOException) cause;
            }
            throw new IOException(cause);
        } catch (OSSException e) {
            if ("NoSuchKey".equals(e.getErrorCode())) {
                NoSuchFileException missing = new NoSuchFileException(e.getMessage());
                missing.initCause(e);
                throw missing;
            }
            if ("FileAlreadyExists".equals(e.getErrorCode())) {
                FileAlreadyExistsException exists = new FileAlreadyExistsException(e.getMessage());
                exists.initCause(e);
                throw exists;
            }
            throw new IOException("OSS answered " + e.getErrorCode() + ": " + e.getErrorMessage(), e);
        } catch (RuntimeException e) {
            throw new IOException(e);
        }
    }
}
