/*
 * A second real client for the sandbox's OSS server: Alibaba's own Java SDK (aliyun-sdk-oss) runs the
 * operations migrator and the test bed's repository plugin rely on and prints one line per check,
 * "OK <name>" or "FAIL <name> <why>". Run by tests/sandbox/test_oss_conformance.py with
 *   java -cp <sdk jars> OssConformance.java <endpoint> <key id> <secret> <bucket> <prefix> <1|4> [region]
 */
import com.aliyun.oss.ClientBuilderConfiguration;
import com.aliyun.oss.OSS;
import com.aliyun.oss.OSSClientBuilder;
import com.aliyun.oss.OSSException;
import com.aliyun.oss.common.auth.DefaultCredentialProvider;
import com.aliyun.oss.common.comm.SignVersion;
import com.aliyun.oss.model.*;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

public class OssConformance {
    interface Check {
        void run() throws Exception;
    }

    static int failures = 0;

    static void check(String name, Check body) {
        try {
            body.run();
            System.out.println("OK " + name);
        } catch (Throwable e) {
            failures++;
            System.out.println("FAIL " + name + " " + e.toString().replace('\n', ' '));
        }
    }

    static void expect(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    static byte[] read(InputStream in) throws Exception {
        try (InputStream stream = in) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[65536];
            for (int n; (n = stream.read(buffer)) > 0; ) {
                out.write(buffer, 0, n);
            }
            return out.toByteArray();
        }
    }

    static String errorCode(Check body) throws Exception {
        try {
            body.run();
        } catch (OSSException e) {
            return e.getErrorCode();
        }
        return "no error";
    }

    public static void main(String[] args) throws Exception {
        String endpoint = args[0], keyId = args[1], secret = args[2], bucket = args[3], prefix = args[4];
        ClientBuilderConfiguration conf = new ClientBuilderConfiguration();
        conf.setUseReaper(false);
        OSSClientBuilder.OSSClientBuilderImpl builder = OSSClientBuilder.create().endpoint(endpoint)
            .credentialsProvider(new DefaultCredentialProvider(keyId, secret)).clientConfiguration(conf);
        if (args[5].equals("4")) {
            conf.setSignatureVersion(SignVersion.V4);
            builder.region(args[6]);
        } else {
            conf.setSignatureVersion(SignVersion.V1);
        }
        OSS oss = builder.build();
        byte[] small = "0123456789abcdef".getBytes(StandardCharsets.UTF_8);
        byte[] large = new byte[300 * 1024];
        new Random(7).nextBytes(large);

        check("put_get", () -> {
            oss.putObject(bucket, prefix + "small", new ByteArrayInputStream(small));
            expect(Arrays.equals(read(oss.getObject(bucket, prefix + "small").getObjectContent()), small), "content");
        });
        check("range", () -> {
            GetObjectRequest request = new GetObjectRequest(bucket, prefix + "small");
            request.setRange(2, 5);
            expect(new String(read(oss.getObject(request).getObjectContent()), StandardCharsets.UTF_8).equals("2345"),
                "bytes 2-5");
            GetObjectRequest past = new GetObjectRequest(bucket, prefix + "small");
            past.setRange(4, 1000);  // OSS: an end past the object answers the whole object
            expect(read(oss.getObject(past).getObjectContent()).length == small.length, "past the end");
        });
        check("head", () -> {
            ObjectMetadata meta = oss.getObjectMetadata(bucket, prefix + "small");
            expect(meta.getContentLength() == small.length, "length " + meta.getContentLength());
            expect(meta.getETag() != null && !meta.getETag().isEmpty(), "etag");
            SimplifiedObjectMeta simple = oss.getSimplifiedObjectMeta(bucket, prefix + "small");
            expect(simple.getSize() == small.length, "objectMeta size");
        });
        check("exists", () -> {
            expect(oss.doesObjectExist(bucket, prefix + "small"), "present");
            expect(!oss.doesObjectExist(bucket, prefix + "absent"), "absent");
            expect(errorCode(() -> oss.getObject(bucket, prefix + "absent")).equals("NoSuchKey"), "NoSuchKey");
        });

        List<String> many = new ArrayList<>();
        for (int i = 0; i < 1005; i++) {
            many.add(String.format("%smany/%04d", prefix, i));
        }
        check("put_1005", () -> {
            for (String key : many) {
                oss.putObject(bucket, key, new ByteArrayInputStream(small));
            }
        });
        check("list_v1_paging", () -> {
            ListObjectsRequest request = new ListObjectsRequest(bucket).withPrefix(prefix + "many/").withMaxKeys(1000);
            ObjectListing first = oss.listObjects(request);
            expect(first.isTruncated() && first.getObjectSummaries().size() == 1000, "first page");
            ObjectListing second = oss.listObjects(request.withMarker(first.getNextMarker()));
            expect(!second.isTruncated() && second.getObjectSummaries().size() == 5, "second page");
            expect(second.getObjectSummaries().get(4).getKey().equals(many.get(1004)), "last key");
        });
        check("list_v2_paging_and_delimiter", () -> {
            ListObjectsV2Request request = new ListObjectsV2Request(bucket, prefix + "many/").withMaxKeys(1000);
            ListObjectsV2Result first = oss.listObjectsV2(request);
            expect(first.isTruncated() && first.getKeyCount() == 1000, "first page");
            request.setContinuationToken(first.getNextContinuationToken());
            ListObjectsV2Result second = oss.listObjectsV2(request);
            expect(!second.isTruncated() && second.getObjectSummaries().size() == 5, "second page");
            ListObjectsV2Request top = new ListObjectsV2Request(bucket, prefix).withDelimiter("/");
            ListObjectsV2Result rolled = oss.listObjectsV2(top);
            expect(rolled.getCommonPrefixes().contains(prefix + "many/"), "common prefix");
        });
        check("batch_delete", () -> {
            for (int start = 0; start < many.size(); start += 1000) {
                List<String> batch = many.subList(start, Math.min(start + 1000, many.size()));
                DeleteObjectsResult result = oss.deleteObjects(new DeleteObjectsRequest(bucket).withKeys(batch));
                expect(result.getDeletedObjects().size() == batch.size(), "deleted " + result.getDeletedObjects().size());
            }
            expect(oss.listObjectsV2(new ListObjectsV2Request(bucket, prefix + "many/")).getKeyCount() == 0, "empty");
        });
        check("delete", () -> {
            oss.deleteObject(bucket, prefix + "small");
            expect(!oss.doesObjectExist(bucket, prefix + "small"), "gone");
            oss.deleteObject(bucket, prefix + "small");  // absent: still no error
        });
        check("multipart", () -> {
            String key = prefix + "multipart";
            String uploadId = oss.initiateMultipartUpload(new InitiateMultipartUploadRequest(bucket, key)).getUploadId();
            List<PartETag> parts = new ArrayList<>();
            parts.add(oss.uploadPart(new UploadPartRequest(bucket, key, uploadId, 1,
                new ByteArrayInputStream(large, 0, 200 * 1024), 200 * 1024)).getPartETag());
            parts.add(oss.uploadPart(new UploadPartRequest(bucket, key, uploadId, 2,
                new ByteArrayInputStream(large, 200 * 1024, 100 * 1024), 100 * 1024)).getPartETag());
            expect(oss.listParts(new ListPartsRequest(bucket, key, uploadId)).getParts().size() == 2, "list parts");
            ListMultipartUploadsRequest pending = new ListMultipartUploadsRequest(bucket);
            pending.setPrefix(prefix);
            expect(oss.listMultipartUploads(pending).getMultipartUploads().size() == 1, "list uploads");
            oss.completeMultipartUpload(new CompleteMultipartUploadRequest(bucket, key, uploadId, parts));
            expect(Arrays.equals(read(oss.getObject(bucket, key).getObjectContent()), large), "content");
            String aborted = oss.initiateMultipartUpload(new InitiateMultipartUploadRequest(bucket, key)).getUploadId();
            oss.abortMultipartUpload(new AbortMultipartUploadRequest(bucket, key, aborted));
            expect(oss.listMultipartUploads(pending).getMultipartUploads().isEmpty(), "aborted");
        });
        check("copy", () -> {
            oss.copyObject(bucket, prefix + "multipart", bucket, prefix + "copied");
            expect(Arrays.equals(read(oss.getObject(bucket, prefix + "copied").getObjectContent()), large), "content");
            expect(errorCode(() -> oss.copyObject(bucket, prefix + "absent", bucket, prefix + "x")).equals("NoSuchKey"),
                "missing source");
            expect(!oss.doesObjectExist(bucket, prefix + "x"), "nothing written for a missing source");
        });
        check("upload_part_copy", () -> {
            String key = prefix + "part-copied";
            String uploadId = oss.initiateMultipartUpload(new InitiateMultipartUploadRequest(bucket, key)).getUploadId();
            UploadPartCopyRequest first = new UploadPartCopyRequest(bucket, prefix + "copied", bucket, key, uploadId, 1,
                0L, 200L * 1024);
            UploadPartCopyRequest second = new UploadPartCopyRequest(bucket, prefix + "copied", bucket, key, uploadId, 2,
                200L * 1024, 100L * 1024);
            List<PartETag> parts = Arrays.asList(oss.uploadPartCopy(first).getPartETag(),
                oss.uploadPartCopy(second).getPartETag());
            oss.completeMultipartUpload(new CompleteMultipartUploadRequest(bucket, key, uploadId, parts));
            expect(Arrays.equals(read(oss.getObject(bucket, key).getObjectContent()), large), "content");
        });
        check("forbid_overwrite", () -> {
            ObjectMetadata forbid = new ObjectMetadata();
            forbid.setHeader("x-oss-forbid-overwrite", "true");
            String code = errorCode(() -> oss.putObject(new PutObjectRequest(bucket, prefix + "copied",
                new ByteArrayInputStream(small), forbid)));
            expect(code.equals("FileAlreadyExists"), code);
            expect(oss.getObjectMetadata(bucket, prefix + "copied").getContentLength() == large.length, "kept");
        });
        for (String key : new String[] {"multipart", "copied", "part-copied"}) {
            oss.deleteObject(bucket, prefix + key);
        }
        oss.shutdown();
        System.exit(failures == 0 ? 0 : 1);
    }
}
